#!/usr/bin/env node
// check.mjs METHOD PATH STATUS FILE [CONTENT_TYPE] -- validates one reply
// of the collector against docs/openapi.yaml: PATH is the request path as
// sent (query string allowed, matched against templates such as
// /api/v1/incidents/{id}), STATUS the HTTP status, FILE the body and
// CONTENT_TYPE the reply's Content-Type (default: the one the document
// gives, application/json where it gives several). Exits 0 when the body
// fits the schema the document names for that operation and status; 1
// with a readable reason otherwise (undocumented path, method, status,
// content type or query parameter of a successful request, or a body
// that does not match); 2 on bad usage.
import { readFileSync } from 'node:fs';
import { loadDoc, makeAjv, deref, matchPath } from './doc.mjs';

const METHODS = ['get', 'post', 'put', 'delete', 'patch', 'head', 'options'];

function die(msg) {
    process.stderr.write(`openapi: ${msg}\n`);
    process.exit(1);
}

async function main(argv) {
    if (argv.length < 4 || argv.length > 5) {
        process.stderr.write('usage: check.mjs METHOD PATH STATUS FILE ' +
                             '[CONTENT_TYPE]\n');
        process.exit(2);
    }
    const [methodArg, reqPath, status, file, ctArg] = argv;
    const method = methodArg.toLowerCase();
    const what = `${methodArg.toUpperCase()} ${reqPath} -> ${status}`;
    if (!METHODS.includes(method) || !/^[1-5][0-9][0-9]$/.test(status)) {
        process.stderr.write(`check.mjs: bad METHOD or STATUS: ${what}\n`);
        process.exit(2);
    }
    const doc = await loadDoc();
    const body = readFileSync(file);
    const qpos = reqPath.indexOf('?');
    const path = qpos < 0 ? reqPath : reqPath.slice(0, qpos);
    const query = qpos < 0 ? '' : reqPath.slice(qpos + 1);

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
            die(`${what}: the document has no path ${path}`);
        if (!op)
            die(`${what}: the document has no ${method.toUpperCase()} ` +
                `for ${template}`);
        die(`${what}: status ${status} is not documented for ` +
            `${method.toUpperCase()} ${template}`);
    }
    resp = deref(doc, resp);

    // A successful request used only parameters the document names.
    if (op && status.startsWith('2') && query) {
        const names = new Set((op.parameters ?? [])
            .concat(doc.paths[template].parameters ?? [])
            .map((p) => deref(doc, p))
            .filter((p) => p.in === 'query').map((p) => p.name));
        for (const [k] of new URLSearchParams(query))
            if (!names.has(k))
                die(`${what}: query parameter "${k}" is not in the ` +
                    `document for ${method.toUpperCase()} ${template}`);
    }

    const content = resp.content ?? {};
    const types = Object.keys(content);
    if (types.length === 0) {
        if (body.length)
            die(`${what}: the document says no body, got ${body.length} ` +
                'bytes');
        return;
    }
    let ct = ctArg ? ctArg.split(';')[0].trim().toLowerCase() : null;
    if (ct === null)
        ct = types.length === 1 ? types[0]
             : types.includes('application/json') ? 'application/json'
             : types[0];
    if (!content[ct])
        die(`${what}: content type ${ct} is not documented ` +
            `(the document has ${types.join(', ')})`);
    const schema = content[ct].schema;
    if (!schema)
        return;                         // binary, described in prose
    let value;
    if (ct === 'application/json' || ct.endsWith('+json')) {
        try {
            value = JSON.parse(body.toString('utf8'));
        } catch (e) {
            die(`${what}: body is not JSON (${e.message}): ` +
                JSON.stringify(body.toString('utf8').slice(0, 300)));
        }
    } else if (ct.startsWith('text/')) {
        value = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } else {
        return;                         // binary types: no schema check
    }
    const { compile } = makeAjv(doc);
    const validate = compile(schema);
    if (validate(value))
        return;
    const lines = validate.errors.slice(0, 12).map((e) => {
        const extra = e.params?.additionalProperty
            ? ` ("${e.params.additionalProperty}")` : '';
        return `  at ${e.instancePath || '(root)'}: ${e.message}${extra}` +
               ` [schema ${e.schemaPath}]`;
    });
    die(`${what}: reply does not match the document:\n${lines.join('\n')}` +
        `\n  body: ${body.toString('utf8').slice(0, 400)}`);
}

main(process.argv.slice(2)).catch((e) => die(e.message));
