#!/usr/bin/env node
// lint.mjs [ROUTE_SOURCE...] -- lints docs/openapi.yaml: valid OpenAPI
// 3.1 (the official schema, through @seriousme/openapi-schema-validator,
// which also checks that every $ref resolves); every schema compiles
// under strict Ajv (an unknown keyword is a typo, not an open door); every
// operation has a unique operationId, a summary and responses, and every
// JSON reply schema refuses fields it does not list; and every path
// literal of the C sources given (collector/server_route.c and the files
// that route) is a path of the document, so a new endpoint cannot go
// undocumented. Exits 1 listing every problem.
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { loadDoc, makeAjv, deref, DOC_PATH } from './doc.mjs';

const problems = [];
const doc = await loadDoc();

const res = await new Validator().validate(structuredClone(doc));
if (!res.valid)
    problems.push('not valid OpenAPI: ' + JSON.stringify(res.errors, null, 1)
        .slice(0, 3000));

const { compile } = makeAjv(doc);
function tryCompile(where, schema) {
    try {
        compile(schema);
    } catch (e) {
        problems.push(`${where}: schema does not compile: ${e.message}`);
    }
}
for (const [name, s] of Object.entries(doc.components?.schemas ?? {}))
    tryCompile(`components.schemas.${name}`, s);

// An object schema of ours closes its fields: additionalProperties or
// unevaluatedProperties false, or it is a fragment made for allOf.
function closed(doc, s) {
    s = deref(doc, s);
    if (s.oneOf)
        return s.oneOf.every((x) => closed(doc, x));
    if (s.type !== 'object' && !s.allOf)
        return true;
    return s.additionalProperties === false ||
           s.unevaluatedProperties === false;
}

const ids = new Set();
for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
        if (method === 'parameters')
            continue;
        const where = `${method.toUpperCase()} ${path}`;
        if (!op.operationId)
            problems.push(`${where}: no operationId`);
        else if (ids.has(op.operationId))
            problems.push(`${where}: operationId ${op.operationId} twice`);
        ids.add(op.operationId);
        if (!op.summary)
            problems.push(`${where}: no summary`);
        if (!op.responses || Object.keys(op.responses).length === 0)
            problems.push(`${where}: no responses`);
        for (const [code, r] of Object.entries(op.responses ?? {})) {
            const resp = deref(doc, r);
            for (const [ct, c] of Object.entries(resp.content ?? {})) {
                if (!c.schema)
                    continue;
                tryCompile(`${where} ${code} ${ct}`, c.schema);
                if (ct === 'application/json' && !closed(doc, c.schema))
                    problems.push(`${where} ${code}: JSON reply schema ` +
                                  'does not set additionalProperties: false');
            }
        }
    }
}

const paths = Object.keys(doc.paths ?? {});
for (const file of process.argv.slice(2)) {
    const src = readFileSync(file, 'utf8');
    const re = /"(\/(?:api\/v1|v1|healthz|readyz|metrics)[^"]*)"/g;
    for (const [, lit] of src.matchAll(re)) {
        const ok = lit.endsWith('/')
            ? paths.some((p) => p.startsWith(lit))
            : paths.includes(lit);
        if (!ok)
            problems.push(`${file}: route "${lit}" is not in the document`);
    }
}

if (problems.length) {
    process.stderr.write(`openapi lint: ${DOC_PATH}:\n  ` +
                         problems.join('\n  ') + '\n');
    process.exit(1);
}
console.log(`openapi lint: ${DOC_PATH}: ${paths.length} paths, ` +
            `${ids.size} operations, ok`);
