/** The benchmark's load-test scenario: one GET of params.target per iteration, with ctx.http. */
import type { IterationContext } from '../../shared/loadtest-driver.ts';

export default async function (ctx: IterationContext): Promise<void> {
  const res = await ctx.http.get(ctx.params.target!);
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
}
