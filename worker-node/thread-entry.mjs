// Entry of a task thread, in plain JavaScript so it loads without a TypeScript loader. Under
// Node 20 a worker thread does not inherit the parent's module hooks (tsx), so it registers
// tsx itself; Deno runs TypeScript natively.
if (typeof globalThis.Deno === 'undefined') {
  const { register } = await import('tsx/esm/api');
  register();
} else {
  // A Deno web Worker drops messages that arrive before it has a message handler, and importing
  // thread.ts takes a while (much longer with a cold module cache): the node's `start` message
  // was lost that way. Keep them until thread.ts takes over. (Node's parentPort queues them.)
  const early = [];
  globalThis.onmessage = (e) => early.push(e.data);
  globalThis.__wsfuturesEarlyMessages = early;
}
await import('./thread.ts');
