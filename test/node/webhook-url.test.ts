// Webhook endpoints (issue 11, item 14): https only, and no address inside a network, whichever
// way it is written. The URLs go through the same WHATWG parser the Worker uses.
import { describe, expect, it } from 'vitest';
import { ipv6Problem, parseIpv6, webhookUrlProblem } from '../../core/contracts/webhook-url.ts';

describe('webhookUrlProblem', () => {
  it('accepts https URLs of public hosts and addresses', () => {
    for (const url of [
      'https://hooks.example.com/edgelive',
      'https://hooks.example.com:8443/a?b=c',
      'https://8.8.8.8/x',
      'https://[2606:4700:4700::1111]/x',
      'https://[64:ff9b::808:808]/',
      'https://1.1.1.1./',
    ]) {
      expect(webhookUrlProblem(url), url).toBeNull();
    }
  });

  it('refuses anything but https, and credentials in the URL', () => {
    expect(webhookUrlProblem('http://hooks.example.com/')).toBe('must be an https URL');
    expect(webhookUrlProblem('ftp://hooks.example.com/')).toBe('must be an https URL');
    expect(webhookUrlProblem('javascript:alert(1)')).toBe('must be an https URL');
    expect(webhookUrlProblem('not a url')).toBe('not a URL');
    expect(webhookUrlProblem('https://user:pw@hooks.example.com/')).toMatch(/credentials/);
  });

  it('refuses loopback, private, link-local and other special IPv4 addresses in every numeric form', () => {
    const refused = [
      'https://127.0.0.1/',
      'https://127.1/',
      'https://0x7f.1/',
      'https://0x7f000001/',
      'https://2130706433/',
      'https://017700000001/',
      'https://0177.0.0.1/',
      'https://10.0.0.5/',
      'https://172.16.3.4/',
      'https://172.31.255.255/',
      'https://192.168.1.1/',
      'https://0xc0.0xa8.1.1/',
      'https://169.254.169.254/latest/meta-data',
      'https://0.0.0.0/',
      'https://0/',
      'https://100.64.0.1/',
      'https://224.0.0.1/',
      'https://255.255.255.255/',
      'https://192.0.2.1/',
      'https://198.18.0.1/',
    ];
    for (const url of refused) expect(webhookUrlProblem(url), url).toMatch(/^points at /);
    expect(webhookUrlProblem('https://0x7f.1/')).toBe('points at a loopback address 127.0.0.1');
    expect(webhookUrlProblem('https://172.32.0.1/'), 'just outside 172.16/12').toBeNull();
  });

  it('refuses loopback, private, link-local IPv6 addresses, and IPv4 inside IPv6', () => {
    const refused = [
      'https://[::1]/',
      'https://[0:0:0:0:0:0:0:1]/',
      'https://[::]/',
      'https://[::ffff:127.0.0.1]/',
      'https://[::ffff:7f00:1]/',
      'https://[::ffff:10.1.2.3]/',
      'https://[::ffff:169.254.169.254]/',
      'https://[::127.0.0.1]/',
      'https://[64:ff9b::127.0.0.1]/',
      'https://[2002:7f00:1::]/',
      'https://[2002:c0a8:101::1]/',
      'https://[fd00::1]/',
      'https://[fc00::1]/',
      'https://[fe80::1]/',
      'https://[febf::1]/',
      'https://[fec0::1]/',
      'https://[ff02::1]/',
      'https://[2001:db8::1]/',
      'https://[2001::1]/',
    ];
    for (const url of refused) expect(webhookUrlProblem(url), url).toMatch(/^points at /);
    expect(webhookUrlProblem('https://[::ffff:127.0.0.1]/')).toBe('points at an IPv4-mapped loopback address [::ffff:7f00:1]');
    expect(webhookUrlProblem('https://[::ffff:8.8.8.8]/')).toBeNull();
  });

  it('refuses localhost names and single-label hosts; the local development switch lets them (and http) through', () => {
    for (const url of ['https://localhost/', 'https://LOCALHOST:8443/', 'https://api.localhost/', 'https://intranet/'])
      expect(webhookUrlProblem(url), url).not.toBeNull();
    for (const url of ['http://127.0.0.1:8788/hook', 'https://localhost/', 'http://[::1]:9/'])
      expect(webhookUrlProblem(url, { allowPrivate: true }), url).toBeNull();
    expect(webhookUrlProblem('ftp://127.0.0.1/', { allowPrivate: true })).toBe('must be an https URL');
  });

  it('reads IPv6 text the way RFC 4291 writes it', () => {
    expect(parseIpv6('::1')).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIpv6('fe80::')).toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIpv6('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]);
    expect(parseIpv6('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const bad of ['1::2::3', '1:2:3', '12345::', '::1.2.3.256', '1:2:3:4:5:6:7:8:9']) expect(parseIpv6(bad), bad).toBeNull();
    expect(ipv6Problem([0x2606, 0x4700, 0, 0, 0, 0, 0, 0x1111])).toBeNull();
  });
});
