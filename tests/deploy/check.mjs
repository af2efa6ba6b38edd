// check.mjs -- deploy_manifests: every document of deploy/**/*.yaml and
// *.yaml.example (the Secrets, named so that kubectl apply -f FOLDER
// never overwrites real ones with their placeholders) and of what
// deploy/ha/collector-b.sh prints parses and validates against
// the Kubernetes API schemas (kubernetes-models), which must refuse
// broken copies of them; then the manifests are checked against the
// binaries of the build: the ConfigMaps' agent.yaml and collector.yaml,
// with the Secrets' files where the pods mount them, pass
// --check-config; probe ports, containerPorts and the Service's
// targetPort are the configs' listen ports; probe paths are /healthz and
// /readyz, which the binaries, started here, answer 200; commands name
// binaries the build makes and deploy/Containerfile installs.
//
// The schemas accept fields they do not know (a misspelt readinessProbe
// is not an error to them), so what the deployment relies on (probes,
// ports, securityContext, resources) is looked up by name here.
//
// Usage: node check.mjs (SEXTANT_SRC, SEXTANT_BIN set by ctest). Prints
// what it checked; exit 1 with every failure listed.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync,
         writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

const SRC = process.env.SEXTANT_SRC;
const BIN = process.env.SEXTANT_BIN;
const BINARIES = {
    'sextant-agent': join(BIN, 'agent/sextant-agent'),
    'sextant-collector': join(BIN, 'collector/sextant-collector'),
};
const DEADLINE_MS = 60000;          // for a started binary to answer
const failures = [];
const tmp = mkdtempSync(join(tmpdir(), 'deploy-manifests-'));
const children = [];

function fail(msg) {
    failures.push(msg);
}

function finish() {
    for (const c of children)
        c.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
    if (failures.length) {
        for (const f of failures)
            console.error('FAIL: ' + f);
        process.exit(1);
    }
    console.log('deploy_manifests: all passed');
    process.exit(0);
}

function yamlFiles(dir) {
    const out = [];
    for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory())
            out.push(...yamlFiles(p));
        else if (/\.yaml(\.example)?$/.test(e.name))
            out.push(p);
    }
    return out.sort();
}

// Every document of @text; a YAML error fails the test.
function parseDocs(name, text) {
    const docs = [];
    for (const d of parseAllDocuments(text)) {
        if (d.errors.length) {
            fail(`${name}: YAML: ${d.errors[0].message}`);
            continue;
        }
        const obj = d.toJS();
        if (obj !== null)            // a "---" with only comments after it
            docs.push({ file: name, obj });
    }
    return docs;
}

// The kubernetes-models class for apiVersion + kind, or null.
async function modelFor(apiVersion, kind) {
    const mod = `kubernetes-models/${apiVersion}/${kind}`;
    try {
        return (await import(mod))[kind] ?? null;
    } catch {
        return null;
    }
}

// Throws the schema's message if @obj is not a valid object of its kind.
async function validate(obj) {
    const M = await modelFor(obj.apiVersion, obj.kind);
    if (!M)
        throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
    new M(obj).validate();
}

function id(o) {
    return `${o.kind} ${o.metadata?.namespace ?? '-'}/${o.metadata?.name}`;
}

// --- 1. parse and validate everything ---
const files = yamlFiles(join(SRC, 'deploy'));
let all = [];
for (const f of files)
    all.push(...parseDocs(relative(SRC, f), readFileSync(f, 'utf8')));
const haB = 'deploy/ha/collector-b.sh (output)';
all.push(...parseDocs(haB, execFileSync('sh',
    [join(SRC, 'deploy/ha/collector-b.sh')], { encoding: 'utf8' })));
for (const d of all) {
    try {
        await validate(d.obj);
    } catch (e) {
        fail(`${d.file}: ${id(d.obj)}: ${e.message}`);
    }
}
console.log(`validated ${all.length} documents of ${files.length} files ` +
            `and ${haB}`);

// A set of manifests applied together must not name one object twice
// (the Namespace aside, which every set carries). deploy/ha/agent-config
// replaces deploy/agent's ConfigMap on purpose, so it is not in a set.
function uniqueIn(setName, docs) {
    const seen = new Set();
    for (const d of docs) {
        const k = id(d.obj);
        if (d.obj.kind !== 'Namespace' && seen.has(k))
            fail(`${setName}: ${k} twice`);
        seen.add(k);
    }
}
const inDir = (dir) => all.filter((d) => d.file.startsWith(dir));
uniqueIn('deploy/agent', inDir('deploy/agent/'));
uniqueIn('deploy/collector + collector-b',
         [...inDir('deploy/collector/'), ...inDir(haB)]);
for (const d of all) {
    const clusterScoped = ['Namespace', 'ClusterRole', 'ClusterRoleBinding',
                           'PriorityClass'].includes(d.obj.kind);
    if (!clusterScoped && d.obj.metadata?.namespace !== 'sextant')
        fail(`${d.file}: ${id(d.obj)} not in namespace sextant`);
}

// --- 2. the validator refuses what it must ---
const deployment = all.find((d) => d.file === 'deploy/collector/' +
    'deployment.yaml' && d.obj.kind === 'Deployment');
if (!deployment)
    finish(fail('deploy/collector/deployment.yaml: no Deployment'));
const broken = {
    'containerPort as a string': (o) => {
        o.spec.template.spec.containers[0].ports[0].containerPort = '8480';
    },
    'no containers': (o) => { delete o.spec.template.spec.containers; },
    'replicas as a word': (o) => { o.spec.replicas = 'one'; },
    'a probe port as a list': (o) => {
        o.spec.template.spec.containers[0].livenessProbe.httpGet.port = [1];
    },
};
for (const [what, breakIt] of Object.entries(broken)) {
    const o = structuredClone(deployment.obj);
    breakIt(o);
    try {
        await validate(o);
        fail(`the validator accepted a Deployment with ${what}`);
    } catch {
        console.log(`refused as it must: a Deployment with ${what}`);
    }
}
try {
    await validate({ apiVersion: 'apps/v1', kind: 'DeamonSet',
                     metadata: { name: 'x' } });
    fail('the validator accepted an unknown kind');
} catch {
    console.log('refused as it must: an unknown kind');
}
if (!parseAllDocuments('a: [1,\nb: 2\n').some((d) => d.errors.length))
    fail('the YAML parser accepted broken YAML');

// --- 3. the configs, as the pods see them, pass --check-config ---
function find(docs, kind, name) {
    return docs.find((d) => d.obj.kind === kind && d.obj.metadata.name ===
                     name)?.obj;
}

// Writes the files of the ConfigMaps and Secrets that @pod mounts under
// @root + mountPath, as the kubelet would. Returns [[mountPath, dir]].
function materialise(docs, pod, container, root) {
    const mounts = [];
    for (const m of container.volumeMounts ?? []) {
        const v = pod.volumes.find((x) => x.name === m.name);
        let data = null;
        if (v?.configMap)
            data = find(docs, 'ConfigMap', v.configMap.name)?.data;
        else if (v?.secret)
            data = find(docs, 'Secret', v.secret.secretName)?.stringData;
        else
            continue;
        if (!data) {
            fail(`volume ${m.name}: its ConfigMap or Secret is not in the ` +
                 'manifests');
            continue;
        }
        const dir = join(root, m.mountPath);
        mkdirSync(dir, { recursive: true });
        for (const [k, text] of Object.entries(data))
            writeFileSync(join(dir, k), text);
        mounts.push([m.mountPath, dir]);
    }
    return mounts;
}

// The config file @container's command names, with every path into a
// mount rewritten to its copy; null (and a failure) if there is none.
function podConfig(docs, pod, container, root, what) {
    const cmd = container.command ?? [];
    const i = cmd.indexOf('--config');
    if (i < 0 || !cmd[i + 1]) {
        fail(`${what}: command has no --config FILE`);
        return null;
    }
    const mounts = materialise(docs, pod, container, root);
    const hit = mounts.find(([p]) => cmd[i + 1].startsWith(p + '/'));
    if (!hit) {
        fail(`${what}: --config ${cmd[i + 1]} is not in a mounted ConfigMap`);
        return null;
    }
    let text = readFileSync(hit[1] + cmd[i + 1].slice(hit[0].length),
                            'utf8');
    for (const [p, dir] of mounts)
        text = text.split(p + '/').join(dir + '/');
    const file = join(root, 'checked.yaml');
    writeFileSync(file, text);
    return { file, cfg: parse(text), mountPath: hit[0] };
}

function checkConfig(binary, file, env, what) {
    const r = spawnSync(BINARIES[binary], ['--check-config', file],
                        { encoding: 'utf8', env: { ...process.env, ...env } });
    if (r.status !== 0 || r.stdout.trim() !== `${file}: ok`)
        fail(`${what}: ${binary} --check-config exited ${r.status}: ` +
             (r.stderr.trim() || r.stdout.trim()));
    else
        console.log(`${what}: ${binary} --check-config: ok`);
}

function portOf(listen) {
    return Number(String(listen).slice(String(listen).lastIndexOf(':') + 1));
}

// A probe's or Service's port (a number or a containerPort's name).
function resolvePort(container, port) {
    if (typeof port === 'number')
        return port;
    return container.ports?.find((p) => p.name === port)?.containerPort;
}

function checkContainer(c, what, binary, listenPort) {
    const cmd = c.command ?? [];
    if (cmd[0] !== binary)
        fail(`${what}: command runs ${cmd[0]}, want ${binary}`);
    if (!(c.ports ?? []).some((p) => p.containerPort === listenPort))
        fail(`${what}: no containerPort ${listenPort} (the config's listen)`);
    for (const [probe, path] of [['livenessProbe', '/healthz'],
                                 ['readinessProbe', '/readyz']]) {
        const g = c[probe]?.httpGet;
        if (!g) {
            fail(`${what}: no ${probe}.httpGet`);
            continue;
        }
        if (g.path !== path)
            fail(`${what}: ${probe} path ${g.path}, want ${path}`);
        if (resolvePort(c, g.port) !== listenPort)
            fail(`${what}: ${probe} port ${g.port} is not ${listenPort}`);
    }
    const s = c.securityContext ?? {};
    if (s.readOnlyRootFilesystem !== true ||
        s.allowPrivilegeEscalation !== false ||
        !(s.capabilities?.drop ?? []).includes('ALL'))
        fail(`${what}: securityContext is not read-only root, no ` +
             'escalation, capabilities dropped');
    if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory ||
        !c.resources?.limits?.memory)
        fail(`${what}: resources need cpu and memory requests, a memory ` +
             'limit');
    console.log(`${what}: ${binary}, port ${listenPort}, /healthz, /readyz`);
}

// The volume @path (a file the binary writes) lives on, and its kind.
function volumeKindAt(pod, c, path) {
    const m = (c.volumeMounts ?? []).find((x) => path.startsWith(
        x.mountPath + '/'));
    const v = m && pod.volumes.find((x) => x.name === m.name);
    return v ? Object.keys(v).find((k) => k !== 'name') : null;
}

// deploy/agent (and the HA variant of its ConfigMap).
const agentDocs = inDir('deploy/agent/');
const ds = find(agentDocs, 'DaemonSet', 'sextant-agent');
const agentPods = [];
if (!ds) {
    fail('deploy/agent: no DaemonSet sextant-agent');
} else {
    const pod = ds.spec.template.spec;
    const c = pod.containers[0];
    const nodeEnv = (c.env ?? []).find((e) => e.name === 'NODE_NAME');
    if (nodeEnv?.valueFrom?.fieldRef?.fieldPath !== 'spec.nodeName')
        fail('DaemonSet: NODE_NAME is not from spec.nodeName');
    if (!(pod.tolerations ?? []).some((t) => t.operator === 'Exists' &&
                                      !t.key))
        fail('DaemonSet: no toleration of every taint (operator Exists)');
    const sa = find(agentDocs, 'ServiceAccount', pod.serviceAccountName);
    if (!sa)
        fail(`DaemonSet: ServiceAccount ${pod.serviceAccountName} missing`);
    const variants = [['deploy/agent', agentDocs],
                      ['deploy/ha/agent-config', [...inDir('deploy/ha/'),
                                                  ...agentDocs]]];
    for (const [what, docs] of variants) {
        // The HA ConfigMap first: find() takes the first of a name.
        const root = join(tmp, what.replace(/\//g, '_'));
        const pc = podConfig(docs, pod, c, root, what);
        if (!pc)
            continue;
        checkConfig('sextant-agent', pc.file, { NODE_NAME: 'node-1' }, what);
        if (pc.cfg.node)
            fail(`${what}: node: set in the file; NODE_NAME gives it`);
        if (volumeKindAt(pod, c, pc.cfg.spool.path) !== 'hostPath')
            fail(`${what}: spool ${pc.cfg.spool.path} is not on the hostPath`);
        checkContainer(c, `${what} DaemonSet`, 'sextant-agent',
                       portOf(pc.cfg.admin.listen));
        agentPods.push(pc);
    }
    const hp = pod.volumes.find((v) => v.hostPath)?.hostPath;
    if (hp?.type !== 'DirectoryOrCreate')
        fail('DaemonSet: the spool hostPath is not DirectoryOrCreate');
}

// The probe's API calls (README "kube") are all the ClusterRole allows.
const role = find(agentDocs, 'ClusterRole', 'sextant-agent');
const rules = JSON.stringify((role?.rules ?? []).map((r) => [r.apiGroups,
    r.resources, r.verbs]));
if (rules !== JSON.stringify([[[''], ['nodes'], ['list']],
                              [['apps'], ['deployments'], ['get']]]))
    fail(`ClusterRole sextant-agent: rules ${rules}, want list nodes and ` +
         'get deployments only');

// deploy/collector and its HA twin.
const collectors = [];
for (const [what, docs, name] of [
    ['deploy/collector', inDir('deploy/collector/'), 'sextant-collector'],
    [haB, [...inDir(haB), ...inDir('deploy/collector/')],
     'sextant-collector-b']]) {
    const dep = find(docs, 'Deployment', name);
    if (!dep) {
        fail(`${what}: no Deployment ${name}`);
        continue;
    }
    if (dep.spec.replicas !== 1 || dep.spec.strategy?.type !== 'Recreate')
        fail(`${what}: want replicas 1 and strategy Recreate (one writer)`);
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    if (pod.securityContext?.runAsNonRoot !== true ||
        pod.securityContext?.seccompProfile?.type !== 'RuntimeDefault')
        fail(`${what}: pod not runAsNonRoot with seccomp RuntimeDefault`);
    const root = join(tmp, name);
    const pc = podConfig(docs, pod, c, root, what);
    if (!pc)
        continue;
    checkConfig('sextant-collector', pc.file, {}, what);
    const port = portOf(pc.cfg.listen);
    checkContainer(c, `${what} Deployment`, 'sextant-collector', port);
    if (volumeKindAt(pod, c, pc.cfg.db) !== 'persistentVolumeClaim')
        fail(`${what}: db ${pc.cfg.db} is not on the PersistentVolumeClaim`);
    const claim = pod.volumes.find((v) => v.persistentVolumeClaim)
        ?.persistentVolumeClaim.claimName;
    if (!find(docs, 'PersistentVolumeClaim', claim))
        fail(`${what}: PersistentVolumeClaim ${claim} missing`);
    const labels = dep.spec.template.metadata.labels;
    const matches = (sel) => sel && Object.entries(sel).every(
        ([k, v]) => labels[k] === v);
    const svc = find(docs, 'Service', name);
    const sp = svc?.spec.ports?.[0];
    if (!svc || !matches(svc.spec.selector) ||
        resolvePort(c, sp.targetPort) !== port)
        fail(`${what}: Service ${name} does not select the pod or its ` +
             `targetPort is not ${port}`);
    else
        console.log(`${what}: Service ${name} -> ${sp.targetPort} = ${port}`);
    // The backup: the same claim and database, on the collector's node.
    const cj = find(docs, 'CronJob', `${name}-backup`);
    const jp = cj?.spec.jobTemplate.spec.template.spec;
    const aff = jp?.affinity?.podAffinity
        ?.requiredDuringSchedulingIgnoredDuringExecution?.[0];
    const script = (jp?.containers[0].command ?? []).join(' ');
    if (!cj)
        fail(`${what}: no CronJob ${name}-backup`);
    else if (!matches(aff?.labelSelector?.matchLabels) ||
             aff.topologyKey !== 'kubernetes.io/hostname')
        fail(`${what}: the backup job is not tied to the collector's node`);
    else if (!jp.volumes.some((v) => v.persistentVolumeClaim?.claimName ===
                              claim) ||
             !script.includes(`sextant-collector backup --db ${pc.cfg.db}`))
        fail(`${what}: the backup does not read ${pc.cfg.db} on ${claim}`);
    else
        console.log(`${what}: backup of ${pc.cfg.db} on ${claim}, same node`);
    collectors.push(pc);
}

// --- 4. the binaries the commands name exist and are in the image ---
const containerfile = readFileSync(join(SRC, 'deploy/Containerfile'),
                                   'utf8');
for (const [name, path] of Object.entries(BINARIES)) {
    const r = spawnSync(path, ['--version'], { encoding: 'utf8' });
    if (r.status !== 0)
        fail(`${path} --version exited ${r.status}`);
    if (!containerfile.includes(`COPY --from=build /usr/local/bin/${name} `))
        fail(`deploy/Containerfile does not install ${name}`);
}
const backupHelp = spawnSync(BINARIES['sextant-collector'],
                             ['backup', '--help'], { encoding: 'utf8' });
if (backupHelp.status !== 0)
    fail('sextant-collector backup --help failed: the CronJob runs it');

// --- 5. the probe paths answer 200 on the real binaries ---
// Started on loopback with configs of their own (the manifests' ones
// would probe cluster names): what is checked is that /healthz and
// /readyz are the paths these binaries serve.
function startLogged(binary, args, log) {
    const p = spawn(BINARIES[binary], args, { stdio: ['ignore', 'ignore',
                                                      'pipe'] });
    children.push(p);
    let text = '';
    p.stderr.on('data', (b) => { text += b; writeFileSync(log, text); });
    return () => text;
}

async function waitFor(what, fn) {
    const end = Date.now() + DEADLINE_MS;
    for (;;) {
        const v = await fn();
        if (v)
            return v;
        if (Date.now() > end)
            throw new Error(`${what}: not within ${DEADLINE_MS} ms`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

async function get200(base, path) {
    return waitFor(`${base}${path} 200`, async () => {
        try {
            return (await fetch(base + path)).status === 200;
        } catch {
            return false;
        }
    });
}

const listening = (log) => () => {
    const m = /listening on (127\.0\.0\.1:\d+)/.exec(log());
    return m ? 'http://' + m[1] : null;
};
try {
    const live = join(tmp, 'live');
    mkdirSync(live);
    writeFileSync(join(live, 'collector.yaml'),
                  'listen: 127.0.0.1:0\n' +
                  `db: ${join(live, 'sextant.db')}\n` +
                  'clusters:\n  - name: c1\n' +
                  '    token: live-token-0123456789\n');
    const clog = startLogged('sextant-collector',
        ['--config', join(live, 'collector.yaml')],
        join(live, 'collector.log'));
    const curl = await waitFor('collector listening', listening(clog));
    writeFileSync(join(live, 'agent.yaml'),
                  'cluster: c1\nregion: r1\nnode: n1\n' +
                  `collector:\n  url: ${curl}\n` +
                  '  token: live-token-0123456789\n' +
                  `spool:\n  path: ${join(live, 'spool.db')}\n` +
                  'admin:\n  listen: 127.0.0.1:0\n' +
                  `targets:\n  - name: c\n    url: ${curl}/healthz\n`);
    const alog = startLogged('sextant-agent',
        ['--config', join(live, 'agent.yaml')], join(live, 'agent.log'));
    const aurl = await waitFor('agent admin listening', listening(alog));
    for (const [who, base] of [['collector', curl], ['agent', aurl]]) {
        for (const path of ['/healthz', '/readyz']) {
            await get200(base, path);
            console.log(`${who} answers 200 on ${path}`);
        }
    }
} catch (e) {
    fail(`started binaries: ${e.message}`);
}
finish();
