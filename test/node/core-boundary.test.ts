// The shared core's boundary (docs/architecture.md § Where things live): `core/` is imported by the
// Worker, the Durable Objects, the media node, the browser pages, the CLI and the benches, so it
// may import nothing but itself and a few pure packages, and may use no platform's globals; the
// media node and the browser pages reach the Worker's code only through `core/`.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/local-stack.ts';

/** Packages the core may import: pure, and running unchanged in workerd, Node and browsers. */
const CORE_PACKAGES = new Set(['zod', 'zod/mini', 'jose']);
/** Globals that exist on one platform only (workerd, Node, the DOM); Web-standard ones (crypto.subtle, TextEncoder) are fine. */
const PLATFORM_GLOBALS = new Set([
  'caches',
  'DurableObject',
  'DurableObjectState',
  'DurableObjectNamespace',
  'R2Bucket',
  'D1Database',
  'KVNamespace',
  'WebSocketPair',
  'HTMLRewriter',
  'ExecutionContext',
  'Buffer',
  'process',
  '__dirname',
  '__filename',
  'require',
  'window',
  'document',
  'navigator',
  'localStorage',
]);

interface Violation {
  file: string;
  rule: string;
  detail: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mts|tsx)$/.test(e.name))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** Every module specifier a file imports or re-exports, static or dynamic. */
export function importSpecifiers(source: string): string[] {
  const specs: string[] = [];
  const patterns = [
    /(?:^|[;\s])(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /(?:^|[;\s])import\s*['"]([^'"]+)['"]/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) specs.push(m[1]!);
  return specs;
}

/**
 * Platform globals a file refers to: identifiers in expression or type position with a platform
 * global's name that the file does not declare itself (a parameter or property named `window` is
 * not the DOM's).
 */
function platformGlobalsUsed(file: string, source: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const declared = new Set<string>();
  const used: ts.Identifier[] = [];
  const visit = (node: ts.Node): void => {
    const name = (node as { name?: ts.Node }).name;
    if (
      name &&
      ts.isIdentifier(name) &&
      (ts.isDeclarationStatement(node) ||
        ts.isVariableDeclaration(node) ||
        ts.isParameter(node) ||
        ts.isBindingElement(node) ||
        ts.isImportSpecifier(node) ||
        ts.isImportClause(node) ||
        ts.isNamespaceImport(node))
    )
      declared.add(name.text);
    if (ts.isIdentifier(node) && PLATFORM_GLOBALS.has(node.text)) {
      const p = node.parent;
      const isPropertyName =
        (ts.isPropertyAccessExpression(p) && p.name === node) ||
        (ts.isQualifiedName(p) && p.right === node) ||
        ((ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodDeclaration(p)) &&
          p.name === node);
      if (!isPropertyName) used.push(node);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return [...new Set(used.filter((id) => !declared.has(id.text)).map((id) => id.text))];
}

/** What a file under `core/` breaks: imports outside the core or of a platform, platform globals. */
export function coreViolations(file: string, source: string): Violation[] {
  const out: Violation[] = [];
  for (const spec of importSpecifiers(source)) {
    if (spec.startsWith('.')) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), spec));
      if (!target.startsWith('core/')) out.push({ file, rule: 'core imports only core', detail: spec });
    } else if (!CORE_PACKAGES.has(spec)) {
      out.push({ file, rule: 'core imports no platform or non-pure package', detail: spec });
    }
  }
  for (const name of platformGlobalsUsed(file, source)) out.push({ file, rule: 'core uses no platform globals', detail: name });
  return out;
}

/** What a media-node or browser file breaks: reaching into the Worker or its objects other than through core. */
export function layerViolations(file: string, source: string): Violation[] {
  const out: Violation[] = [];
  for (const spec of importSpecifiers(source)) {
    if (!spec.startsWith('.')) continue;
    const target = relative(ROOT, resolve(ROOT, dirname(file), spec));
    if (/^(workers|durable-objects)\//.test(target)) out.push({ file, rule: 'reaches the Worker only through core/', detail: spec });
  }
  return out;
}

/**
 * What a Worker file breaks: reaching into a Durable Object's file instead of its RPC contract in
 * `core/contracts/`. Only the Worker's entry (which exports the classes) and its Env type (the
 * bindings' types) name the object classes.
 */
export function workerViolations(file: string, source: string): Violation[] {
  if (file === 'workers/index.ts' || file === 'workers/env.ts') return [];
  const out: Violation[] = [];
  for (const spec of importSpecifiers(source)) {
    if (!spec.startsWith('.')) continue;
    const target = relative(ROOT, resolve(ROOT, dirname(file), spec));
    if (target.startsWith('durable-objects/'))
      out.push({ file, rule: 'the Worker reaches an object only through core/contracts', detail: spec });
  }
  return out;
}

/**
 * What a Durable Object file breaks: importing a Worker module that reads the D1 catalog (the
 * objects own their state; the catalog is the Worker's). The Env type may be imported as a type.
 */
export function objectViolations(file: string, source: string, read: (file: string) => string): Violation[] {
  const out: Violation[] = [];
  for (const m of source.matchAll(/(?:^|[;\s])(import|export)\s+(type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g)) {
    const spec = m[3]!;
    if (!spec.startsWith('.')) continue;
    const target = relative(ROOT, resolve(ROOT, dirname(file), spec));
    if (!target.startsWith('workers/')) continue;
    if (target === 'workers/env.ts' && m[2]) continue;
    if (/\bD1Database\b|\.DB\b|\.prepare\(/.test(read(target)))
      out.push({ file, rule: 'an object imports no Worker module that touches D1', detail: spec });
  }
  return out;
}

describe('the core boundary', () => {
  it('core/ imports only core/, zod and jose, and uses no Worker, Node or DOM globals', () => {
    const violations = sourceFiles('core').flatMap((f) => coreViolations(f, readFileSync(join(ROOT, f), 'utf8')));
    expect(violations).toEqual([]);
  });

  it('the media node and the browser pages import nothing of workers/ or durable-objects/', () => {
    const files = [...sourceFiles('transcoder-node'), ...sourceFiles('public/src')];
    const violations = files.flatMap((f) => layerViolations(f, readFileSync(join(ROOT, f), 'utf8')));
    expect(violations).toEqual([]);
  });

  it('Worker routes import no Durable Object file (only core/contracts), and objects no D1 module of the Worker', () => {
    const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');
    expect(sourceFiles('workers').flatMap((f) => workerViolations(f, read(f)))).toEqual([]);
    expect(sourceFiles('durable-objects').flatMap((f) => objectViolations(f, read(f), read))).toEqual([]);
  });

  it('the checks catch each kind of breach (so a green run means something)', () => {
    const bad = [
      "import { Hono } from 'hono';",
      "import type { Env } from '../../workers/env.ts';",
      "import { createHash } from 'node:crypto';",
      "const workers = await import('cloudflare:workers');",
      'export const copy = (b: Uint8Array) => Buffer.from(b);',
      'export class Alarm extends DurableObject {}',
    ].join('\n');
    const rules = coreViolations('core/contracts/example.ts', bad).map((v) => `${v.rule}: ${v.detail}`);
    expect(rules).toEqual([
      'core imports no platform or non-pure package: hono',
      'core imports only core: ../../workers/env.ts',
      'core imports no platform or non-pure package: node:crypto',
      'core imports no platform or non-pure package: cloudflare:workers',
      'core uses no platform globals: Buffer',
      'core uses no platform globals: DurableObject',
    ]);
    expect(
      coreViolations(
        'core/contracts/example.ts',
        "// Buffer in a comment is fine\nimport { z } from 'zod';\nconst s = 'process';\nclass W { readonly window: number; constructor(window = 32) { this.window = window; } }",
      ),
    ).toEqual([]);
    expect(
      layerViolations(
        'transcoder-node/x.ts',
        "import { a } from '../workers/routes/ingest.ts';\nimport { b } from '../core/contracts/object-keys.ts';",
      ).map((v) => v.detail),
    ).toEqual(['../workers/routes/ingest.ts']);
    expect(
      workerViolations(
        'workers/routes/x.ts',
        "import type { IngestPush } from '../../durable-objects/stream-state.ts';\nimport { a } from '../../core/contracts/stream-rpc.ts';",
      ).map((v) => v.detail),
    ).toEqual(['../../durable-objects/stream-state.ts']);
    const files: Record<string, string> = {
      'workers/vod-catalog.ts': 'export async function f(db: D1Database) {}',
      'workers/websocket-answers.ts': 'export function g() {}',
    };
    const read = (f: string) => files[f] ?? '';
    const objectSource =
      "import type { Env } from '../workers/env.ts';\nimport { newRecordingId } from '../workers/vod-catalog.ts';\nimport { g } from '../workers/websocket-answers.ts';\nimport { Env as E } from '../workers/env.ts';";
    files['workers/env.ts'] = 'export interface Env { DB: D1Database }';
    expect(objectViolations('durable-objects/x.ts', objectSource, read).map((v) => v.detail)).toEqual([
      '../workers/vod-catalog.ts',
      '../workers/env.ts',
    ]);
  });
});
