/**
 * Issue 17: every field the config parser fills is read by code that runs the daemon, so an
 * option cannot again parse and do nothing. The test walks the `Config` type of
 * src/config/types.ts (every property, into nested records, arrays, maps and union members) and
 * asks the TypeScript language service for each property's references: at least one must be a
 * read outside src/config/ and outside -n's checks (src/daemon/preflight.ts). `where` fields
 * (file:line for messages) are not options and are left out. The `limit` keys the parser accepts
 * are data, not properties: each must be named by the role that applies it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ACCEPTED_LIMITS } from '../../src/config/parse-settings.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const TYPES = join(ROOT, 'src/config/types.ts');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

const FILES = sources(join(ROOT, 'src'));

/** Fields that are no option: where the config came from, and the macros the parser expands itself. */
const NOT_OPTIONS: Record<string, string> = {
  'config.file': 'the path the config was read from, for messages',
  'config.macros': 'expanded by the parser as it reads',
  'config.mdaWrappers[].name': 'the key of the map it is in, which the mda looks it up by',
};

/** Code that runs the daemon: not the parser, not -n's checks. */
function runtime(file: string): boolean {
  const rel = relative(ROOT, file);
  return rel.startsWith('src/') && !rel.startsWith('src/config/') && rel !== 'src/daemon/preflight.ts';
}

function languageService(): ts.LanguageService {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, skipLibCheck: true, types: ['node'], noEmit: true,
  };
  const host: ts.LanguageServiceHost = {
    getScriptFileNames: () => FILES,
    getScriptVersion: () => '1',
    getScriptSnapshot: (f) => (ts.sys.fileExists(f) ? ts.ScriptSnapshot.fromString(ts.sys.readFile(f)!) : undefined),
    getCurrentDirectory: () => ROOT,
    getCompilationSettings: () => options,
    getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
    fileExists: ts.sys.fileExists,
    readFile: ts.sys.readFile,
    readDirectory: ts.sys.readDirectory,
    directoryExists: ts.sys.directoryExists,
    getDirectories: ts.sys.getDirectories,
  };
  return ts.createLanguageService(host, ts.createDocumentRegistry());
}

interface Field {
  path: string;
  decl: ts.Declaration;
}

/** Every property declared in types.ts reachable from Config, with a path for the message. */
function fieldsOfConfig(checker: ts.TypeChecker, program: ts.Program): Field[] {
  const file = program.getSourceFile(TYPES)!;
  const config = file.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'Config')!;
  const out: Field[] = [];
  const seenDecl = new Set<ts.Declaration>();
  const seenType = new Set<ts.Type>();
  const visit = (type: ts.Type, path: string): void => {
    if (seenType.has(type)) return;
    seenType.add(type);
    if (type.isUnion() || type.isIntersection()) return type.types.forEach((t) => visit(t, path));
    // arrays, Maps, Records: their element or value type
    for (const arg of checker.getTypeArguments(type as ts.TypeReference) ?? []) visit(arg, `${path}[]`);
    const index = type.getStringIndexType();
    if (index) visit(index, `${path}[key]`);
    for (const prop of type.getProperties()) {
      const decl = prop.valueDeclaration ?? prop.declarations?.[0];
      if (!decl || decl.getSourceFile().fileName !== file.fileName) continue;
      const name = `${path}.${prop.name}`;
      if (!seenDecl.has(decl) && prop.name !== 'where') {
        seenDecl.add(decl);
        out.push({ path: name, decl });
      }
      visit(checker.getTypeOfSymbolAtLocation(prop, decl), name);
    }
  };
  visit(checker.getTypeAtLocation(config.name), 'config');
  return out;
}

/** `const { negate } = criterion` reads the property, though the service calls it a write (of the local). */
function destructured(program: ts.Program, r: ts.ReferenceEntry): boolean {
  const file = program.getSourceFile(r.fileName);
  if (!file) return false;
  const find = (n: ts.Node): ts.Node | undefined =>
    n.getStart(file) <= r.textSpan.start && r.textSpan.start < n.getEnd() ? (ts.forEachChild(n, find) ?? n) : undefined;
  const node = find(file);
  return !!node && (ts.isBindingElement(node.parent) || ts.isShorthandPropertyAssignment(node.parent) && ts.isObjectBindingPattern(node.parent.parent));
}

test('every field the config parser fills is read by code that runs the daemon', { timeout: 300_000 }, () => {
  const service = languageService();
  const program = service.getProgram()!;
  const fields = fieldsOfConfig(program.getTypeChecker(), program);
  assert.ok(fields.length > 100, `only ${fields.length} fields found: the walk is broken`);
  const unread: string[] = [];
  for (const f of fields) {
    const at = (f.decl as ts.NamedDeclaration).name!.getStart();
    const refs = (service.findReferences(TYPES, at) ?? []).flatMap((r) => r.references);
    const reads = refs.filter((r) => !r.isDefinition && runtime(r.fileName) && (!r.isWriteAccess || destructured(program, r)));
    if (reads.length === 0 && !Object.hasOwn(NOT_OPTIONS, f.path)) unread.push(f.path);
  }
  assert.deepEqual(unread, [], `fields no runtime code reads (act on them, or refuse the option in the parser):\n${unread.join('\n')}`);
});

test('every limit key the parser accepts is named by code that applies it', () => {
  const text = FILES.filter(runtime).map((f) => readFileSync(f, 'utf8')).join('\n');
  const missing = Object.entries(ACCEPTED_LIMITS).flatMap(([kind, keys]) => keys.filter((k) => !text.includes(`'${k}'`)).map((k) => `${kind} limit ${k}`));
  assert.deepEqual(missing, []);
});
