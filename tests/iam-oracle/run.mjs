// Runs IAM evaluation cases through @cloud-copilot/iam-simulate (installed by
// scripts/setup-iam-oracle.sh; AGPL-3.0, so it is only ever run as this
// separate program, never copied into the repo). Reads one JSON array of
// cases on stdin, each {id, simulation} in iam-simulate's Simulation shape,
// and prints one JSON array of {id, result, error} in the same order:
// result is "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied", ignored
// the context keys iam-simulate dropped as not applying to the action.
// With `--bench N` it also times N passes over the cases and prints
// {"decisions": n, "seconds": s} on stderr.
import { createRequire } from 'node:module';
import path from 'node:path';

const dir = process.env.TWOKEY_IAM_ORACLE;
if (!dir) {
  console.error('TWOKEY_IAM_ORACLE is not set (run scripts/setup-iam-oracle.sh)');
  process.exit(2);
}
const require = createRequire(path.join(dir, 'package.json'));
const { runSimulation } = require('@cloud-copilot/iam-simulate');

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'));

async function one(c) {
  try {
    const r = await runSimulation(c.simulation, { simulationMode: 'Strict' });
    if (r.resultType === 'error') return { id: c.id, result: null, error: JSON.stringify(r.errors) };
    const ignored = r.resultType === 'single' ? (r.result.ignoredContextKeys ?? []) : [];
    return { id: c.id, result: r.overallResult, ignored, error: null };
  } catch (e) {
    return { id: c.id, result: null, error: String(e && e.message ? e.message : e) };
  }
}

const out = [];
for (const c of cases) out.push(await one(c));
const bench = process.argv.indexOf('--bench');
if (bench >= 0) {
  const passes = Number(process.argv[bench + 1] ?? 1);
  const t0 = process.hrtime.bigint();
  for (let p = 0; p < passes; p++) for (const c of cases) await one(c);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.error(JSON.stringify({ decisions: passes * cases.length, seconds: s }));
}
process.stdout.write(JSON.stringify(out));
