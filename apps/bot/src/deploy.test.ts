import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { parse } from "yaml";
import { z } from "zod";
import { isSecretKey, silentLogger } from "@candlekeep/core";
import { openDatabase } from "@candlekeep/db";
import { createServerTestDatabase, NO_RETRY, type TestDatabase } from "@candlekeep/db/testing";
import { loadConfig } from "./config";

/**
 * The DigitalOcean App Platform deployment: .do/app.yaml and the Procfile are
 * checked against the App Platform spec and against the repository (scripts,
 * settings), and the worker's start command is run the way the platform runs it.
 */

const ROOT = path.resolve(__dirname, "../../..");
const SPEC_PATH = path.join(ROOT, ".do/app.yaml");
const PROCFILE_PATH = path.join(ROOT, "Procfile");

// ---------------------------------------------------------------------------
// The App Platform app spec, as far as this app uses it (field names, enums and
// limits from DigitalOcean's spec reference). Objects are strict: a misspelt
// field fails here instead of being ignored by the platform.

const SCOPES = ["UNSET", "RUN_TIME", "BUILD_TIME", "RUN_AND_BUILD_TIME"] as const;
type Scope = (typeof SCOPES)[number];

const envVarSchema = z.strictObject({
  key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
  value: z.string().optional(),
  scope: z.enum(SCOPES).optional(),
  type: z.enum(["GENERAL", "SECRET"]).optional(),
});
type EnvVar = z.infer<typeof envVarSchema>;

const nameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,30}[a-z0-9]$/, "lowercase letters, digits and dashes, 2 to 32 characters");

const githubSchema = z.strictObject({
  repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/, "owner/name"),
  branch: z.string().min(1),
  deploy_on_push: z.boolean().optional(),
});

const alertSchema = z.strictObject({
  rule: z.enum(["CPU_UTILIZATION", "MEM_UTILIZATION", "RESTART_COUNT", "DEPLOYMENT_FAILED", "DEPLOYMENT_LIVE", "DEPLOYMENT_STARTED", "DEPLOYMENT_CANCELED", "DOMAIN_FAILED", "DOMAIN_LIVE", "AUTOSCALE_FAILED"]),
  disabled: z.boolean().optional(),
  operator: z.enum(["GREATER_THAN", "LESS_THAN"]).optional(),
  value: z.number().optional(),
  window: z.enum(["FIVE_MINUTES", "TEN_MINUTES", "THIRTY_MINUTES", "ONE_HOUR"]).optional(),
});

// A liveness check allows success_threshold 1 only.
const livenessCheckSchema = z.strictObject({
  initial_delay_seconds: z.number().int().min(0).max(3600).optional(),
  period_seconds: z.number().int().min(1).max(300).optional(),
  timeout_seconds: z.number().int().min(1).max(120).optional(),
  success_threshold: z.literal(1).optional(),
  failure_threshold: z.number().int().min(1).max(50).optional(),
  http_path: z.string().startsWith("/").optional(),
  port: z.number().int().min(1).max(65535).optional(),
});

const terminationSchema = z.strictObject({ grace_period_seconds: z.number().int().min(1).max(600).optional() });

const runnableFields = {
  name: nameSchema,
  github: githubSchema,
  source_dir: z.string().startsWith("/").optional(),
  environment_slug: z.string().min(1).optional(),
  build_command: z.string().min(1).optional(),
  run_command: z.string().min(1),
  instance_size_slug: z.string().regex(/^(apps-[sd]-\d+vcpu-[\d.]+gb(-fixed)?|basic-(xxs|xs|s|m)|professional-(xs|s|m|1l|l|xl))$/),
  instance_count: z.number().int().min(1).max(250).optional(),
  envs: z.array(envVarSchema).optional(),
  alerts: z.array(alertSchema).optional(),
  termination: terminationSchema.optional(),
};

const workerSchema = z.strictObject({
  ...runnableFields,
  autoscaling: z.unknown().optional(),
  liveness_health_check: livenessCheckSchema.optional(),
});

const jobSchema = z.strictObject({
  ...runnableFields,
  kind: z.enum(["UNSPECIFIED", "PRE_DEPLOY", "POST_DEPLOY", "FAILED_DEPLOY"]),
});

const databaseSchema = z.strictObject({
  name: nameSchema,
  engine: z.enum(["MYSQL", "PG", "REDIS", "MONGODB", "KAFKA", "OPENSEARCH", "VALKEY"]),
  version: z.string().optional(),
  production: z.boolean().optional(),
  cluster_name: z.string().optional(),
  db_name: z.string().optional(),
  db_user: z.string().optional(),
});

const appSpecSchema = z.strictObject({
  name: nameSchema,
  region: z.enum(["ams", "atl", "blr", "fra", "lon", "nyc", "sfo", "sgp", "syd", "tor"]).optional(),
  alerts: z.array(alertSchema).optional(),
  envs: z.array(envVarSchema).optional(),
  databases: z.array(databaseSchema).optional(),
  jobs: z.array(jobSchema).optional(),
  workers: z.array(workerSchema).optional(),
  services: z.array(z.unknown()).optional(),
  static_sites: z.array(z.unknown()).optional(),
  functions: z.array(z.unknown()).optional(),
  domains: z.array(z.unknown()).optional(),
  ingress: z.unknown().optional(),
  egress: z.unknown().optional(),
  features: z.array(z.string()).optional(),
  maintenance: z.unknown().optional(),
});
type AppSpec = z.infer<typeof appSpecSchema>;
type Component = NonNullable<AppSpec["workers"]>[number] | NonNullable<AppSpec["jobs"]>[number];

/** What App Platform can bind from a database component: `${<database>.<VARIABLE>}`. */
const DATABASE_BINDABLES = new Set(["DATABASE_URL", "CA_CERT", "HOSTNAME", "PORT", "USERNAME", "PASSWORD", "DATABASE", "JDBC_DATABASE_URL", "REDIS_URL"]);
const BINDING = /\$\{([^}.]+)\.([^}]+)\}/g;

function readSpec(): AppSpec {
  return appSpecSchema.parse(parse(fs.readFileSync(SPEC_PATH, "utf8")));
}

function components(spec: AppSpec): Component[] {
  return [...(spec.jobs ?? []), ...(spec.workers ?? [])];
}

/** Variables a component sees: app-level ones, overridden by its own. */
function effectiveEnvs(spec: AppSpec, component: Component): EnvVar[] {
  const byKey = new Map<string, EnvVar>();
  for (const env of [...(spec.envs ?? []), ...(component.envs ?? [])]) byKey.set(env.key, env);
  return [...byKey.values()];
}

/** App Platform's default scope for a variable without one. */
function scopeOf(env: EnvVar): Scope {
  return env.scope === undefined || env.scope === "UNSET" ? "RUN_AND_BUILD_TIME" : env.scope;
}

function findWorker(spec: AppSpec, name: string) {
  const worker = spec.workers?.find((w) => w.name === name);
  if (!worker) throw new Error(`no worker named ${name} in .do/app.yaml`);
  return worker;
}

function findJob(spec: AppSpec, kind: string) {
  const job = spec.jobs?.find((j) => j.kind === kind);
  if (!job) throw new Error(`no ${kind} job in .do/app.yaml`);
  return job;
}

function envValue(envs: readonly EnvVar[], key: string): string | undefined {
  return envs.find((env) => env.key === key)?.value;
}

/**
 * Database variables exist only when components run (the database is created
 * after the build), and NODE_ENV=production at build time would make pnpm skip
 * devDependencies: all of them must be RUN_TIME.
 */
function runTimeOnlyProblems(spec: AppSpec): string[] {
  const problems: string[] = [];
  const databases = new Set((spec.databases ?? []).map((db) => db.name));
  const check = (owner: string, envs: readonly EnvVar[]) => {
    for (const env of envs) {
      const bindings = [...(env.value ?? "").matchAll(BINDING)];
      for (const [, target, variable] of bindings) {
        if (!databases.has(target ?? "")) problems.push(`${owner} ${env.key} binds \${${target}.${variable}} but no database "${target}" is declared`);
        else if (!DATABASE_BINDABLES.has(variable ?? "")) problems.push(`${owner} ${env.key} binds unknown database variable ${variable}`);
      }
      const mustBeRunTime = bindings.length > 0 || env.key === "DATABASE_URL" || env.key === "DATABASE_CA_CERT" || env.key === "NODE_ENV";
      if (mustBeRunTime && scopeOf(env) !== "RUN_TIME") problems.push(`${owner} ${env.key} has scope ${scopeOf(env)}; it must be RUN_TIME`);
    }
  };
  check("app", spec.envs ?? []);
  for (const component of components(spec)) check(component.name, component.envs ?? []);
  return problems;
}

/** Secrets are filled in the control panel; the repository holds none. */
function secretProblems(spec: AppSpec): string[] {
  const problems: string[] = [];
  const envs = [...(spec.envs ?? []).map((env) => ["app", env] as const), ...components(spec).flatMap((c) => (c.envs ?? []).map((env) => [c.name, env] as const))];
  for (const [owner, env] of envs) {
    const isBinding = env.value !== undefined && /^\$\{[^}]+\}$/.test(env.value);
    if (env.type === "SECRET" && env.value !== undefined) problems.push(`${owner} ${env.key} is a SECRET with a committed value`);
    if (isSecretKey(env.key) && !isBinding && env.type !== "SECRET") problems.push(`${owner} ${env.key} looks secret but is not type SECRET`);
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Commands: every command the platform runs must exist in this repository.

const packageJsonSchema = z.object({
  name: z.string(),
  packageManager: z.string().optional(),
  engines: z.record(z.string(), z.string()).optional(),
  scripts: z.record(z.string(), z.string()).default({}),
  dependencies: z.record(z.string(), z.string()).default({}),
  devDependencies: z.record(z.string(), z.string()).default({}),
});
type PackageJson = z.infer<typeof packageJsonSchema>;

function readPackage(dir: string): PackageJson {
  return packageJsonSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")));
}

function workspacePackages(): Map<string, { dir: string; manifest: PackageJson }> {
  const found = new Map<string, { dir: string; manifest: PackageJson }>();
  for (const group of ["apps", "packages"]) {
    for (const entry of fs.readdirSync(path.join(ROOT, group), { withFileTypes: true })) {
      const dir = path.join(ROOT, group, entry.name);
      if (entry.isDirectory() && fs.existsSync(path.join(dir, "package.json"))) {
        const manifest = readPackage(dir);
        found.set(manifest.name, { dir, manifest });
      }
    }
  }
  return found;
}

/**
 * Problems with a shell command line (`a && b`): each part must be a pnpm
 * script that exists, the pinned pnpm install, or node running a package's
 * build output exactly as that package's `start` script does.
 */
function commandProblems(command: string): string[] {
  const root = readPackage(ROOT);
  const packages = workspacePackages();
  const pinnedPnpm = root.packageManager?.replace(/^pnpm@/, "");
  const problems: string[] = [];
  for (const part of command.split("&&").map((p) => p.trim())) {
    if (part === "pnpm install --frozen-lockfile") continue; // the lockfile's exact dependency tree
    const words = part.split(/\s+/);
    const [first, second, third, fourth] = words;
    if (first === "npm" && second === "install" && third === "-g" && words.length === 4) {
      if (fourth !== `pnpm@${pinnedPnpm}`) problems.push(`"${part}" does not install the pinned pnpm@${pinnedPnpm}`);
    } else if (first === "pnpm" && second === "--filter" && words.length === 4) {
      const target = packages.get(third ?? "");
      if (!target) problems.push(`"${part}": no workspace package named ${third}`);
      else if (target.manifest.scripts[fourth ?? ""] === undefined) problems.push(`"${part}": ${third} has no script "${fourth}"`);
    } else if (first === "pnpm" && words.length === 2) {
      if (root.scripts[second ?? ""] === undefined) problems.push(`"${part}": the root package.json has no script "${second}"`);
    } else if (first === "exec" && second === "node") {
      problems.push(...nodeStartProblems(part, words.slice(1), packages));
    } else {
      problems.push(`"${part}" is not a known command`);
    }
  }
  return problems;
}

/** `node <flags> <pkg-dir>/<file>` must be that package's `start` script, run from the repository root. */
function nodeStartProblems(part: string, nodeWords: readonly string[], packages: ReturnType<typeof workspacePackages>): string[] {
  const file = nodeWords[nodeWords.length - 1] ?? "";
  const owner = [...packages.values()].find(({ dir }) => path.join(ROOT, file).startsWith(`${dir}${path.sep}`));
  if (!owner) return [`"${part}" runs ${file}, which is in no workspace package`];
  const relative = path.relative(owner.dir, path.join(ROOT, file));
  const expected = ["node", ...nodeWords.slice(1, -1), relative].join(" ");
  const problems: string[] = [];
  if (owner.manifest.scripts.start !== expected) problems.push(`"${part}" differs from ${owner.manifest.name}'s start script "${owner.manifest.scripts.start}"`);
  if (!(owner.manifest.scripts.build ?? "").includes(`--outfile=${relative}`)) problems.push(`"${part}" runs ${relative}, which ${owner.manifest.name}'s build script does not produce`);
  return problems;
}

function readProcfile(): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of fs.readFileSync(PROCFILE_PATH, "utf8").split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const match = /^([a-z][a-z0-9_-]*):\s*(.+)$/.exec(line);
    if (!match) throw new Error(`Procfile line is not "type: command": ${line}`);
    entries.set(match[1] as string, (match[2] as string).trim());
  }
  return entries;
}

// ---------------------------------------------------------------------------

describe(".do/app.yaml", () => {
  const spec = readSpec();

  it("parses as YAML and has the App Platform spec's shape", () => {
    expect(spec.name).toBe("candlekeep");
    expect(spec.databases?.map((db) => db.engine)).toEqual(["PG"]);
    expect(spec.services).toBeUndefined(); // the bot serves nothing publicly
  });

  it("runs the bot as exactly one worker instance, never autoscaled", () => {
    const bot = findWorker(spec, "bot");
    expect(bot.instance_count).toBe(1);
    expect(bot.autoscaling).toBeUndefined();
    expect(spec.workers).toHaveLength(1);
  });

  it("starts compiled code with node itself, so SIGTERM reaches the bot", () => {
    const bot = findWorker(spec, "bot");
    expect(bot.run_command).toMatch(/^exec node /);
    expect(commandProblems(bot.run_command)).toEqual([]);
    const start = readPackage(path.join(ROOT, "apps/bot")).scripts.start ?? "";
    expect(start).toMatch(/^node .*dist\/main\.js$/);
    expect(start).not.toMatch(/tsx|ts-node|--watch|nodemon/);
  });

  it("migrates in a PRE_DEPLOY job with prisma migrate deploy from production dependencies", () => {
    const migrate = findJob(spec, "PRE_DEPLOY");
    expect(migrate.run_command).toBe("pnpm --filter @candlekeep/db db:migrate:deploy");
    const db = readPackage(path.join(ROOT, "packages/db"));
    expect(db.scripts["db:migrate:deploy"]).toBe("prisma migrate deploy");
    expect(db.dependencies.prisma).toBeDefined();
    expect(db.devDependencies.prisma).toBeUndefined();
  });

  it("names only commands and scripts that exist in the repository", () => {
    expect(commandProblems("pnpm --filter bot strat")).toEqual(['"pnpm --filter bot strat": bot has no script "strat"']);
    expect(commandProblems("pnpm --filter @candlekeep/dbx db:migrate:deploy")).toHaveLength(1);
    expect(commandProblems("exec node apps/bot/dist/main.js")).toHaveLength(1); // not what the start script runs
    expect(commandProblems("npm install -g pnpm@latest")).toHaveLength(1);
    for (const component of components(spec)) {
      expect({ component: component.name, problems: commandProblems(component.run_command) }).toEqual({ component: component.name, problems: [] });
      expect({ component: component.name, problems: commandProblems(component.build_command ?? "") }).toEqual({ component: component.name, problems: [] });
    }
  });

  it("builds with the pinned pnpm, and the build generates the Prisma client", () => {
    for (const component of components(spec)) {
      expect(component.build_command).toBe("npm install -g pnpm@12.4.2 && pnpm install --frozen-lockfile && pnpm build");
      expect(component.environment_slug).toBe("node-js");
    }
    expect(readPackage(ROOT).packageManager).toBe("pnpm@12.4.2");
    // The buildpack takes the Node.js version from engines: one LTS line, the one .nvmrc, CI and the bundles name.
    const major = fs.readFileSync(path.join(ROOT, ".nvmrc"), "utf8").trim();
    expect(readPackage(ROOT).engines).toEqual({ node: `${major}.x` });
    expect(fs.readFileSync(path.join(ROOT, "tooling/node-24.sh"), "utf8")).toMatch(new RegExp(`^NODE_24_VERSION=${major}\\.`, "m"));
    for (const app of ["apps/bot", "apps/verify"]) expect(readPackage(path.join(ROOT, app)).scripts.build).toContain(`--target=node${major} `);
    const turbo = z.object({ tasks: z.object({ build: z.object({ dependsOn: z.array(z.string()) }) }) }).parse(JSON.parse(fs.readFileSync(path.join(ROOT, "turbo.json"), "utf8")));
    expect(turbo.tasks.build.dependsOn).toEqual(expect.arrayContaining(["^db:generate"]));
  });

  it("gives every job and worker DATABASE_URL from the declared database, at run time", () => {
    const [database] = spec.databases ?? [];
    for (const component of components(spec)) {
      const url = effectiveEnvs(spec, component).find((env) => env.key === "DATABASE_URL");
      expect({ component: component.name, value: url?.value, scope: url?.scope }).toEqual({ component: component.name, value: `\${${database?.name}.DATABASE_URL}`, scope: "RUN_TIME" });
    }
    const bot = effectiveEnvs(spec, findWorker(spec, "bot"));
    expect(bot.find((env) => env.key === "DATABASE_CA_CERT")).toEqual({ key: "DATABASE_CA_CERT", value: `\${${database?.name}.CA_CERT}`, scope: "RUN_TIME" });
  });

  it("binds database variables and NODE_ENV at run time only", () => {
    expect(runTimeOnlyProblems(spec)).toEqual([]);
  });

  it("would reject DATABASE_URL at build time, an unscoped one, or a binding to an undeclared database", () => {
    const withUrl = (env: EnvVar): AppSpec => ({ ...spec, workers: [{ ...findWorker(spec, "bot"), envs: [env] }] });
    expect(runTimeOnlyProblems(withUrl({ key: "DATABASE_URL", value: "${db.DATABASE_URL}", scope: "BUILD_TIME" }))).toEqual(["bot DATABASE_URL has scope BUILD_TIME; it must be RUN_TIME"]);
    expect(runTimeOnlyProblems(withUrl({ key: "DATABASE_URL", value: "${db.DATABASE_URL}", scope: "RUN_AND_BUILD_TIME" }))).toHaveLength(1);
    expect(runTimeOnlyProblems(withUrl({ key: "DATABASE_URL", value: "${db.DATABASE_URL}" }))).toEqual(["bot DATABASE_URL has scope RUN_AND_BUILD_TIME; it must be RUN_TIME"]);
    expect(runTimeOnlyProblems(withUrl({ key: "DATABASE_URL", value: "${other.DATABASE_URL}", scope: "RUN_TIME" }))).toEqual(['bot DATABASE_URL binds ${other.DATABASE_URL} but no database "other" is declared']);
  });

  it("commits no secret: exchange keys are SECRET variables without a value", () => {
    expect(secretProblems(spec)).toEqual([]);
    const bot = findWorker(spec, "bot").envs ?? [];
    for (const key of ["EXCHANGE_API_KEY", "EXCHANGE_API_SECRET"]) {
      expect(bot.find((env) => env.key === key)).toEqual({ key, scope: "RUN_TIME", type: "SECRET" });
    }
    const leaky: AppSpec = { ...spec, workers: [{ ...findWorker(spec, "bot"), envs: [{ key: "EXCHANGE_API_SECRET", value: "hunter2", type: "SECRET" }] }] };
    expect(secretProblems(leaky)).toEqual(["bot EXCHANGE_API_SECRET is a SECRET with a committed value"]);
  });

  it("checks liveness on the bot's /healthz, on the port the bot listens on", () => {
    const bot = findWorker(spec, "bot");
    const port = envValue(effectiveEnvs(spec, bot), "PORT");
    expect(bot.liveness_health_check?.http_path).toBe("/healthz");
    expect(String(bot.liveness_health_check?.port)).toBe(port);
    expect(fs.readFileSync(path.join(__dirname, "server.ts"), "utf8")).toContain('"/healthz"');
  });

  it("gives the bot settings it accepts: JSON logs, TLS with the database's CA, no auto-migration", () => {
    const env = Object.fromEntries(
      effectiveEnvs(spec, findWorker(spec, "bot"))
        .filter((e) => e.value !== undefined)
        .map((e) => [e.key, (e.value ?? "").replace("${db.DATABASE_URL}", "postgresql://doadmin:pw@db-host.example:25060/defaultdb?sslmode=require").replace("${db.CA_CERT}", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----")]),
    );
    const config = loadConfig(env, [], false);
    expect(config.database).toMatchObject({ autoMigrate: false, poolMax: 10 });
    expect(config.database.caCert).toContain("BEGIN CERTIFICATE");
    expect(config.log.format).toBe("json");
    expect(config.trading.mode).toBe("paper");
    expect(config.server.port).toBe(Number(envValue(effectiveEnvs(spec, findWorker(spec, "bot")), "PORT")));
  });
});

describe("Procfile", () => {
  const spec = readSpec();
  const procfile = readProcfile();

  it("releases with the migration and runs the worker the way the app spec does", () => {
    expect([...procfile.keys()].sort()).toEqual(["release", "worker"]);
    expect(procfile.get("release")).toBe(findJob(spec, "PRE_DEPLOY").run_command);
    expect(procfile.get("worker")).toBe(findWorker(spec, "bot").run_command);
  });

  it("names only commands and scripts that exist", () => {
    for (const command of procfile.values()) expect(commandProblems(command)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// The production start path: the worker's run command, run the way App Platform
// runs it (a shell, from the repository root, the spec's variables, NODE_ENV=production).

const execFileAsync = promisify(execFile);

const logLineSchema = z.object({ level: z.enum(["error", "warn", "info", "debug"]), message: z.string(), timestamp: z.string() }).passthrough();
type LogLine = z.infer<typeof logLineSchema>;

interface BotProcess {
  /** Every stdout and stderr line, in arrival order. */
  lines: string[];
  /** Resolves with the exit code once the process and both streams are closed. */
  exit: Promise<number | null>;
  /** Waits for a log line that `matches`; rejects on timeout or exit. */
  waitFor(matches: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine>;
  signal(signal: NodeJS.Signals): void;
}

/** The worker's variables as the platform would give them, with the database bound to `databaseUrl`. */
function productionEnv(spec: AppSpec, databaseUrl: string, overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const variable of effectiveEnvs(spec, findWorker(spec, "bot"))) {
    if (variable.value === undefined) continue; // secrets left empty
    if (variable.value === "${db.CA_CERT}") continue; // the local server has no TLS
    env[variable.key] = variable.value.replace("${db.DATABASE_URL}", databaseUrl);
  }
  return { ...env, ...overrides };
}

function parseLogLine(line: string): LogLine | undefined {
  try {
    const result = logLineSchema.safeParse(JSON.parse(line));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}

function startProductionBot(command: string, env: NodeJS.ProcessEnv): BotProcess {
  // The platform runs the command through a shell; `exec` must hand the process over to node.
  const child = spawn("/bin/sh", ["-c", command], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream }).on("line", (line) => {
      lines.push(line);
      for (const listener of listeners) listener();
    });
  }
  const exit = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  let exited = false;
  void exit.then(() => {
    exited = true;
    for (const listener of listeners) listener();
  });
  return {
    lines,
    exit,
    signal: (signal) => child.kill(signal),
    waitFor(matches, timeoutMs) {
      return new Promise<LogLine>((resolve, reject) => {
        const check = () => {
          const found = lines.map(parseLogLine).find((line): line is LogLine => line !== undefined && matches(line));
          if (found) done(() => resolve(found));
          else if (exited) done(() => reject(new Error(`the bot exited before the expected log line:\n${lines.join("\n")}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for a log line:\n${lines.join("\n")}`))), timeoutMs);
        const done = (finish: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          finish();
        };
        listeners.add(check);
        check();
      });
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const healthSchema = z.object({ status: z.string(), ticks: z.number() }).passthrough();

async function waitForHealthyTicks(port: number, timeoutMs: number): Promise<{ status: number; body: z.infer<typeof healthSchema> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`http://127.0.0.1:${port}/healthz`);
    const body = healthSchema.parse(await response.json());
    if (body.ticks > 0 || Date.now() > deadline) return { status: response.status, body };
    await sleep(100);
  }
}

/** A local port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function migrate(databaseUrl: string, dataDir: string): Promise<void> {
  // Stands in for the PRE_DEPLOY job: `prisma migrate deploy` needs Prisma's schema
  // engine, which cannot be downloaded here; the project's applier writes the same
  // _prisma_migrations bookkeeping (packages/db/src/migrate.test.ts).
  const db = await openDatabase({ databaseUrl, dataDir, autoMigrate: true, logger: silentLogger, retry: NO_RETRY });
  await db.close();
}

async function eventTypes(databaseUrl: string, dataDir: string): Promise<string[]> {
  const db = await openDatabase({ databaseUrl, dataDir, autoMigrate: false, logger: silentLogger, retry: NO_RETRY });
  try {
    const result = await db.sql.query<{ type: string }>("SELECT type FROM system_events ORDER BY id");
    return result.rows.map((row) => row.type);
  } finally {
    await db.close();
  }
}

describe("production start path", () => {
  const spec = readSpec();
  const runCommand = findWorker(spec, "bot").run_command;
  const databases: TestDatabase[] = [];

  beforeAll(async () => {
    // The build the spec runs (turbo: prisma generate, tsc, esbuild); cached when nothing changed.
    const env = { ...process.env };
    delete env.NODE_ENV;
    await execFileAsync("pnpm", ["build"], { cwd: ROOT, env, maxBuffer: 64 * 1024 * 1024, timeout: 600_000 });
  }, 600_000);

  afterAll(async () => {
    await Promise.all(databases.map((db) => db.drop()));
  });

  async function freshDatabase(): Promise<{ url: string; dataDir: string }> {
    const db = await createServerTestDatabase("candlekeep_deploy");
    databases.push(db);
    if (db.url === undefined) throw new Error("expected a server database");
    return { url: db.url, dataDir: db.dataDir };
  }

  it("logs only JSON, answers /healthz after ticks, and stops cleanly on SIGTERM", async () => {
    const { url, dataDir } = await freshDatabase();
    await migrate(url, dataDir);
    const bot = startProductionBot(
      runCommand,
      productionEnv(spec, url, { PORT: "0", TICK_INTERVAL_MS: "200", SYMBOLS: "BTC/USDT,ETH/USDT,SOL/USDT" }),
    );
    try {
      const running = await bot.waitFor((line) => line.message === "bot running", 60_000);
      const port = z.number().int().positive().parse(running.port);

      const health = await waitForHealthyTicks(port, 30_000);
      expect(health.status).toBe(200);
      expect(health.body.status).toBe("ok");
      expect(health.body.ticks).toBeGreaterThan(0);
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(metrics.status).toBe(200);

      bot.signal("SIGTERM");
      expect(await withTimeout(bot.exit, 30_000, "stopping after SIGTERM")).toBe(0);
    } finally {
      bot.signal("SIGKILL");
    }
    const notJson = bot.lines.filter((line) => parseLogLine(line) === undefined);
    expect(notJson).toEqual([]);
    expect(bot.lines.map(parseLogLine).filter((line) => line?.level === "error")).toEqual([]);
    const events = await eventTypes(url, dataDir);
    // The paper account's record (written once, at its opening) aside, the first event is the start.
    expect(events.filter((type) => type !== "PAPER_ACCOUNT")[0]).toBe("STARTUP");
    expect(events).toContain("SHUTDOWN");
  }, 120_000);

  it("exits 1 with one clear line when the database cannot be reached after its retries", async () => {
    const port = await closedPort();
    const bot = startProductionBot(runCommand, productionEnv(spec, `postgresql://postgres:s3cret@127.0.0.1:${port}/candlekeep`, { PORT: "0", DATABASE_CONNECT_RETRIES: "1" }));
    const code = await withTimeout(bot.exit, 60_000, "giving up on the database");
    expect(code).toBe(1);
    const parsed = bot.lines.map(parseLogLine);
    expect(bot.lines.filter((_, i) => parsed[i] === undefined)).toEqual([]);
    const errors = parsed.filter((line): line is LogLine => line?.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(new RegExp(`Cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port}.*after 2 attempts`));
    expect(bot.lines.join("\n")).not.toContain("s3cret");
  }, 90_000);

  it("refuses to start with pending migrations when AUTO_MIGRATE=false: exit 1, one clear line", async () => {
    const { url } = await freshDatabase();
    const bot = startProductionBot(runCommand, productionEnv(spec, url, { PORT: "0" }));
    const code = await withTimeout(bot.exit, 60_000, "the bot's refusal");
    expect(code).toBe(1);
    const parsed = bot.lines.map(parseLogLine);
    expect(bot.lines.filter((_, i) => parsed[i] === undefined)).toEqual([]);
    const errors = parsed.filter((line): line is LogLine => line?.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/pending migration/);
    expect(errors[0]?.message).toContain("pnpm --filter @candlekeep/db db:migrate:deploy");
    expect(errors[0]?.message).not.toContain("\n");
    expect(bot.lines.join("\n")).not.toMatch(/\bat .*\(.*:\d+:\d+\)|"stack"/);
  }, 90_000);
});
