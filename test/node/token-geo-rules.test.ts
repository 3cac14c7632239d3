// Country rules (core/auth/geo.ts): the decision table for allow and block lists, unknown
// countries, and the schema that validates codes in stream settings and token claims.
import { describe, expect, it } from 'vitest';
import { CountryListSchema, checkCountry, type CountryRules } from '../../core/auth/geo.ts';

const decide = (rules: CountryRules | undefined, country: string | undefined) => (checkCountry(rules, country).ok ? 'allow' : 'refuse');

describe('checkCountry', () => {
  const table: Array<[string, CountryRules | undefined, string | undefined, 'allow' | 'refuse']> = [
    ['no rules, known country', undefined, 'DE', 'allow'],
    ['no rules, unknown country', undefined, undefined, 'allow'],
    ['empty rules', {}, 'DE', 'allow'],
    ['allow list, listed', { allowCountries: ['DE', 'AT'] }, 'AT', 'allow'],
    ['allow list, not listed', { allowCountries: ['DE', 'AT'] }, 'FR', 'refuse'],
    ['allow list, no cf (fails closed)', { allowCountries: ['DE'] }, undefined, 'refuse'],
    ['allow list, XX (fails closed)', { allowCountries: ['DE'] }, 'XX', 'refuse'],
    ['allow list naming XX, no cf', { allowCountries: ['DE', 'XX'] }, undefined, 'allow'],
    ['allow list, lower-case country from cf', { allowCountries: ['DE'] }, 'de', 'allow'],
    ['block list, listed', { blockCountries: ['FR'] }, 'FR', 'refuse'],
    ['block list, not listed', { blockCountries: ['FR'] }, 'DE', 'allow'],
    ['block list, no cf', { blockCountries: ['FR'] }, undefined, 'allow'],
    ['block list naming XX, no cf', { blockCountries: ['XX'] }, undefined, 'refuse'],
    ['block list naming T1 (Tor)', { blockCountries: ['T1'] }, 'T1', 'refuse'],
    ['both, allowed and not blocked', { allowCountries: ['DE', 'FR'], blockCountries: ['FR'] }, 'DE', 'allow'],
    ['both, allowed but blocked', { allowCountries: ['DE', 'FR'], blockCountries: ['FR'] }, 'FR', 'refuse'],
    ['both, not allowed', { allowCountries: ['DE', 'FR'], blockCountries: ['FR'] }, 'IT', 'refuse'],
  ];
  it.each(table)('%s', (_name, rules, country, expected) => {
    expect(decide(rules, country)).toBe(expected);
  });

  it('says which country was refused, or that it is unknown', () => {
    expect(checkCountry({ blockCountries: ['FR'] }, 'FR')).toEqual({ ok: false, message: 'playback is not available in FR' });
    expect(checkCountry({ allowCountries: ['FR'] }, undefined)).toEqual({ ok: false, message: expect.stringContaining('unknown') });
  });
});

describe('CountryListSchema', () => {
  it('upper-cases and de-duplicates codes', () => {
    expect(CountryListSchema.parse(['de', 'DE', 'fr', 't1', 'xx'])).toEqual(['DE', 'FR', 'T1', 'XX']);
  });

  it.each([[[]], [['Germany']], [['D']], [['DEU']], [['D1']], [[49]], ['DE']])('refuses %j', (value) => {
    expect(CountryListSchema.safeParse(value).success).toBe(false);
  });
});
