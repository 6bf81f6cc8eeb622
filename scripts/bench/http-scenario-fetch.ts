/** The same scenario as http-scenario.ts with `fetch`: one GET of params.target per iteration. */
import type { IterationContext } from '../../shared/loadtest-driver.ts';

export default async function (ctx: IterationContext): Promise<void> {
  const res = await fetch(ctx.params.target!);
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
}
