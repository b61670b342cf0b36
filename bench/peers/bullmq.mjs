// BullMQ on the bench's Redis: N no-op jobs added with addBulk, then a
// Worker (concurrency 64) is started and timed until it completed them all.
// Jobs are removed on completion (removeOnComplete), as production setups
// usually configure it. Prints one JSON line.
//
//   REDIS_URL=redis://127.0.0.1:6379 node bullmq.mjs 20000
import { Queue, Worker } from "bullmq";

const jobs = Number(process.argv[2] ?? 20000);
const url = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const concurrency = Number(process.env.BULLMQ_CONCURRENCY ?? 64);
const name = `bench-${process.pid}-${Date.now()}`;

const queue = new Queue(name, { connection });
for (let added = 0; added < jobs; added += 1000) {
  await queue.addBulk(
    Array.from({ length: Math.min(1000, jobs - added) }, (_, i) => ({
      name: "noop",
      data: { n: added + i },
      opts: { removeOnComplete: true, removeOnFail: false },
    })),
  );
}
if ((await queue.getWaitingCount()) !== jobs) throw new Error("the jobs were not all added");

let completed = 0;
let failed = 0;
let done;
const finished = new Promise((resolve) => (done = resolve));
const started = process.hrtime.bigint();
const worker = new Worker(name, async () => {}, { connection, concurrency });
worker.on("completed", () => {
  completed += 1;
  if (completed + failed === jobs) done();
});
worker.on("failed", () => {
  failed += 1;
  if (completed + failed === jobs) done();
});
await finished;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await worker.close();
await queue.obliterate({ force: true });
await queue.close();
console.log(JSON.stringify({ peer: "bullmq", jobs, ran: completed, failed, seconds, rss_kib: process.resourceUsage().maxRSS }));
