// Entry of a task thread, in plain JavaScript so it loads without a TypeScript loader. Under
// Node 20 a worker thread does not inherit the parent's module hooks (tsx), so it registers
// tsx itself; Deno runs TypeScript natively.
if (typeof globalThis.Deno === 'undefined') {
  const { register } = await import('tsx/esm/api');
  register();
}
await import('./thread.ts');
