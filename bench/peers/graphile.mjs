// graphile-worker on the bench's PostgreSQL: N no-op jobs added with
// addJobs, then a runner is started and timed until every job is gone from
// the table (completed and deleted). Prints one JSON line.
//
//   DATABASE_URL=postgres://… node graphile.mjs default 20000
//   DATABASE_URL=postgres://… node graphile.mjs batched 20000
//
// default: graphile-worker's defaults, concurrency 24.
// batched: the settings of its performance docs: a local queue of 500 jobs
//          per pool and batched completion (completeJobBatchDelay 0).
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";

const [mode = "default", jobsArg = "20000"] = process.argv.slice(2);
const jobs = Number(jobsArg);
const connectionString = process.env.DATABASE_URL;
const concurrency = Number(process.env.GRAPHILE_CONCURRENCY ?? 24);
if (!connectionString || !["default", "batched"].includes(mode) || !(jobs > 0)) {
  console.error("usage: DATABASE_URL=… node graphile.mjs default|batched JOBS");
  process.exit(2);
}
// Warnings and errors only: its info lines would cost the run console I/O.
const logger = new Logger(() => (level, message) => {
  if (level === "warning" || level === "error") console.error(`graphile-worker ${level}: ${message}`);
});

const utils = await makeWorkerUtils({ connectionString, logger });
await utils.migrate();
for (let added = 0; added < jobs; added += 1000) {
  const specs = Array.from({ length: Math.min(1000, jobs - added) }, (_, i) => ({
    identifier: "noop",
    payload: { n: added + i },
  }));
  await utils.addJobs(specs);
}
await utils.release();

const pool = new pg.Pool({ connectionString, max: 1 });
const remaining = async () =>
  Number((await pool.query("select count(*) as n from graphile_worker._private_jobs")).rows[0].n);
if ((await remaining()) !== jobs) throw new Error("the jobs were not all added");

let ran = 0;
const preset =
  mode === "batched"
    ? { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } }
    : undefined;
const started = process.hrtime.bigint();
const runner = await run({
  connectionString,
  concurrency,
  noHandleSignals: true,
  logger,
  preset,
  taskList: {
    noop: async () => {
      ran += 1;
    },
  },
});
while (ran < jobs || (await remaining()) > 0) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await runner.stop();
await pool.end();
console.log(
  JSON.stringify({ peer: `graphile-worker ${mode}`, jobs, ran, seconds, rss_kib: process.resourceUsage().maxRSS }),
);
