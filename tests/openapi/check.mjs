#!/usr/bin/env node
// check.mjs -- validates replies of the collector against
// docs/openapi.yaml.
//
//   check.mjs METHOD PATH STATUS FILE [CONTENT_TYPE]
//   check.mjs --queue LIST
//
// PATH is the request path as sent (query string allowed, matched against
// templates such as /api/v1/incidents/{id}), STATUS the HTTP status, FILE
// the body and CONTENT_TYPE the reply's Content-Type (default: the one
// the document gives, application/json where it gives several). A reply
// passes when its body fits the schema the document names for that
// operation and status; it fails on an undocumented path, method, status,
// content type or query parameter of a successful request, or a body that
// does not match. LIST holds one reply a line, tab-separated: METHOD,
// STATUS, FILE, CONTENT_TYPE (may be empty) and PATH, last, which may
// hold anything but a tab or a line break (tests/lib.sh's api_valid
// queues them so that a test starts node once, not once per request). Exits 0 when every
// reply passes; 1 naming each that does not; 2 on bad usage.
import { readFileSync } from 'node:fs';
import { loadDoc, makeAjv, deref, matchPath } from './doc.mjs';

const METHODS = ['get', 'post', 'put', 'delete', 'patch', 'head', 'options'];

class Mismatch extends Error {}
function mismatch(msg) {
    throw new Mismatch(msg);
}

// The response object the document gives for @method @path @status, and
// the template and operation it found it under.
function findResponse(doc, method, path, status, what) {
    const template = matchPath(doc, path);
    const op = template ? doc.paths[template][method] : undefined;
    // Answers any request can get whatever its path or method (no such
    // path, wrong method, framing, URL too long, no token): the
    // document lists them once, under x-every-request.
    const anyReq = doc['x-every-request'] ?? {};
    let resp = op?.responses?.[status] ??
               op?.responses?.[`${status[0]}XX`] ?? anyReq[status];
    if (!resp && op)
        resp = op.responses?.default;
    if (!resp) {
        if (!template)
            mismatch(`${what}: the document has no path ${path}`);
        if (!op)
            mismatch(`${what}: the document has no ` +
                     `${method.toUpperCase()} for ${template}`);
        mismatch(`${what}: status ${status} is not documented for ` +
                 `${method.toUpperCase()} ${template}`);
    }
    return { template, op, resp: deref(doc, resp) };
}

// A successful request used only parameters the document names.
function checkQuery(doc, template, op, method, query, what) {
    const names = new Set((op.parameters ?? [])
        .concat(doc.paths[template].parameters ?? [])
        .map((p) => deref(doc, p))
        .filter((p) => p.in === 'query').map((p) => p.name));
    for (const [k] of new URLSearchParams(query))
        if (!names.has(k))
            mismatch(`${what}: query parameter "${k}" is not in the ` +
                     `document for ${method.toUpperCase()} ${template}`);
}

// The body as the schema sees it, or undefined for a binary type.
function bodyValue(ct, body, what) {
    if (ct === 'application/json' || ct.endsWith('+json')) {
        try {
            return JSON.parse(body.toString('utf8'));
        } catch (e) {
            mismatch(`${what}: body is not JSON (${e.message}): ` +
                     JSON.stringify(body.toString('utf8').slice(0, 300)));
        }
    }
    if (ct.startsWith('text/')) {
        try {
            return new TextDecoder('utf-8', { fatal: true }).decode(body);
        } catch {
            mismatch(`${what}: ${ct} body is not UTF-8`);
        }
    }
    return undefined;
}

function checkOne(ctx, methodArg, reqPath, status, body, ctArg) {
    const { doc } = ctx;
    const method = methodArg.toLowerCase();
    const what = `${methodArg.toUpperCase()} ${reqPath.slice(0, 200)} -> ` +
                 status;
    if (!METHODS.includes(method) || !/^[1-5][0-9][0-9]$/.test(status))
        mismatch(`${what}: bad METHOD or STATUS`);
    const qpos = reqPath.indexOf('?');
    const path = qpos < 0 ? reqPath : reqPath.slice(0, qpos);
    const query = qpos < 0 ? '' : reqPath.slice(qpos + 1);
    const { template, op, resp } = findResponse(doc, method, path, status,
                                                what);
    if (op && status.startsWith('2') && query)
        checkQuery(doc, template, op, method, query, what);

    const content = resp.content ?? {};
    const types = Object.keys(content);
    if (types.length === 0) {
        if (body.length)
            mismatch(`${what}: the document says no body, got ` +
                     `${body.length} bytes`);
        return;
    }
    let ct = ctArg ? ctArg.split(';')[0].trim().toLowerCase() : null;
    if (!ct)
        ct = types.length === 1 ? types[0]
             : types.includes('application/json') ? 'application/json'
             : types[0];
    if (!content[ct])
        mismatch(`${what}: content type ${ct} is not documented ` +
                 `(the document has ${types.join(', ')})`);
    const schema = content[ct].schema;
    const value = schema ? bodyValue(ct, body, what) : undefined;
    if (value === undefined)
        return;                 // binary: described in prose
    if (!ctx.compiled.has(schema))
        ctx.compiled.set(schema, ctx.compile(schema));
    const validate = ctx.compiled.get(schema);
    if (validate(value))
        return;
    const lines = validate.errors.slice(0, 12).map((e) => {
        const extra = e.params?.additionalProperty
            ? ` ("${e.params.additionalProperty}")` : '';
        return `  at ${e.instancePath || '(root)'}: ${e.message}${extra}` +
               ` [schema ${e.schemaPath}]`;
    });
    mismatch(`${what}: reply does not match the document:\n` +
             `${lines.join('\n')}\n  body: ` +
             body.toString('utf8').slice(0, 400));
}

async function main(argv) {
    let replies;
    if (argv[0] === '--queue' && argv.length === 2) {
        replies = readFileSync(argv[1], 'utf8').split('\n')
            .filter((l) => l).map((l) => {
                const [m, status, file, type, ...path] = l.split('\t');
                return [m, path.join('\t'), status, file, type];
            });
    } else if (argv.length >= 4 && argv.length <= 5 && argv[0][0] !== '-') {
        replies = [argv];
    } else {
        process.stderr.write('usage: check.mjs METHOD PATH STATUS FILE ' +
                             '[CONTENT_TYPE]\n       check.mjs --queue ' +
                             'LIST\n');
        process.exit(2);
    }
    const doc = await loadDoc();
    const { compile } = makeAjv(doc);
    const ctx = { doc, compile, compiled: new Map() };
    const failed = [];
    const seen = new Set();
    for (const [m, p, s, file, t] of replies) {
        const key = JSON.stringify([m, p, s, file, t]);
        if (seen.has(key))
            continue;
        seen.add(key);
        try {
            checkOne(ctx, m, p, String(s), readFileSync(file), t);
        } catch (e) {
            if (!(e instanceof Mismatch))
                throw e;
            failed.push(e.message);
        }
    }
    if (failed.length) {
        process.stderr.write(`openapi: ${failed.length} of ` +
                             `${seen.size} replies do not match ` +
                             `docs/openapi.yaml:\n${failed.join('\n')}\n`);
        process.exit(1);
    }
}

main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`openapi: ${e.message}\n`);
    process.exit(1);
});
