// doc.mjs -- loads docs/openapi.yaml and compiles its schemas with Ajv
// (JSON Schema 2020-12, the dialect of OpenAPI 3.1), for check.mjs (one
// reply) and lint.mjs (the whole document). Strict: a keyword Ajv does
// not know is an error, so a typo in the document (additionalProperty)
// fails the lint instead of silently allowing anything.
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export const DOC_PATH = join(dirname(fileURLToPath(import.meta.url)),
                             '..', '..', 'docs', 'openapi.yaml');

// Parsing the YAML is half of a check's time, and a test checks dozens
// of replies: the parsed document is kept as JSON in the temp folder,
// named by the digest of the YAML text, so an edit is never read stale.
export async function loadDoc(path = DOC_PATH) {
    const text = readFileSync(path, 'utf8');
    const digest = createHash('sha256').update(text).digest('hex');
    const cache = join(tmpdir(), `sextant-openapi-${digest}.json`);
    try {
        return JSON.parse(readFileSync(cache, 'utf8'));
    } catch {
        // not cached yet (or a torn copy): parse it
    }
    const { default: YAML } = await import('yaml');
    const doc = YAML.parse(text);
    const part = `${cache}.${process.pid}`;
    try {
        writeFileSync(part, JSON.stringify(doc));
        renameSync(part, cache);
    } catch {
        // a read-only temp folder only costs time
    }
    return doc;
}

// Component schemas live under "#/components/schemas/"; Ajv gets them as
// one schema "openapi" whose $defs they are, and every $ref is rewritten
// to point there.
const SCHEMA_PREFIX = '#/components/schemas/';

function rewriteRefs(node) {
    if (Array.isArray(node))
        return node.map(rewriteRefs);
    if (node === null || typeof node !== 'object')
        return node;
    const out = {};
    for (const [k, v] of Object.entries(node)) {
        if (k === '$ref' && typeof v === 'string' &&
            v.startsWith(SCHEMA_PREFIX))
            out[k] = 'openapi#/$defs/' + v.slice(SCHEMA_PREFIX.length);
        else
            out[k] = rewriteRefs(v);
    }
    return out;
}

export function makeAjv(doc) {
    const ajv = new Ajv2020({ strict: true, allErrors: true,
                              strictRequired: true,
                              allowUnionTypes: true });
    addFormats(ajv);
    // OpenAPI's own keywords inside a Schema Object.
    ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs']);
    ajv.addSchema({ $id: 'openapi',
                    $defs: rewriteRefs(doc.components?.schemas ?? {}) });
    return { ajv, compile: (schema) => ajv.compile(rewriteRefs(schema)) };
}

// Follows a local $ref (#/components/responses/..., parameters, ...) to
// the object it names; other objects are returned as they are.
export function deref(doc, obj) {
    let seen = 0;
    while (obj && typeof obj === 'object' && typeof obj.$ref === 'string') {
        if (!obj.$ref.startsWith('#/') || ++seen > 16)
            throw new Error(`cannot follow $ref ${obj.$ref}`);
        obj = obj.$ref.slice(2).split('/')
            .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
            .reduce((o, k) => (o === undefined ? undefined : o[k]), doc);
        if (obj === undefined)
            throw new Error('dangling $ref');
    }
    return obj;
}

// The path template of @doc that @path (no query) matches, or null:
// "/api/v1/incidents/7" matches "/api/v1/incidents/{id}". A literal
// template wins over one with parameters.
export function matchPath(doc, path) {
    const paths = Object.keys(doc.paths ?? {});
    if (paths.includes(path))
        return path;
    const segs = path.split('/');
    for (const t of paths) {
        const ts = t.split('/');
        if (ts.length !== segs.length)
            continue;
        if (ts.every((s, i) => /^\{[^}]+\}$/.test(s)
                                   ? segs[i] !== '' : s === segs[i]))
            return t;
    }
    return null;
}
