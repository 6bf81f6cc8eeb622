/**
 * What other machines dial to reach this coordinator. A server listening on a wildcard address
 * (0.0.0.0, ::) is reachable at each of the machine's LAN addresses, never at the wildcard
 * itself, which no worker can dial.
 */
import { hostname, networkInterfaces } from 'node:os';

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

export function isWildcard(host: string): boolean {
  return WILDCARDS.has(host);
}

/** The hosts to advertise for a server listening on `host`: its LAN addresses for a wildcard. */
export function advertisedHosts(host: string): string[] {
  if (!isWildcard(host)) return [host];
  const v4: string[] = [];
  const v6: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4') v4.push(a.address);
      // Link-local IPv6 addresses need a zone id to be dialled: not worth printing.
      else if (host !== '0.0.0.0' && !a.address.startsWith('fe80:')) v6.push(a.address);
    }
  }
  const all = [...v4, ...v6];
  return all.length > 0 ? all : [hostname()];
}

/** `host` as it goes in a URL (IPv6 in brackets). */
export function formatHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export interface JoinOptions {
  hosts: string[];
  port: number;
  tls: boolean;
}

/**
 * The commands that start a worker node joining this coordinator, for each host it is reached
 * at: with Node and nothing installed (the single-file worker, downloaded), with Deno and
 * nothing installed (run from its URL), and where wsfutures is installed. The token is not in
 * them: it goes in WSFUTURES_TOKEN, not on a command line that `ps` shows.
 */
export function joinCommands({ hosts, port, tls }: JoinOptions): string[] {
  const out: string[] = [];
  for (const host of hosts) {
    const at = `${formatHost(host)}:${port}`;
    const connect = tls ? `wss://${at}` : at;
    const download = `${tls ? 'https' : 'http'}://${at}/wsfutures/worker.mjs`;
    out.push(
      `curl -fsSO ${tls ? '--cacert ca.pem ' : ''}${download} && node worker.mjs --connect ${connect}${tls ? ' --ca ca.pem' : ''}`,
      `deno run -A --reload ${tls ? '--cert ca.pem ' : ''}${download} --connect ${connect}${tls ? ' --ca ca.pem' : ''}`,
      `npx wsfutures-worker --connect ${connect}${tls ? ' --ca ca.pem' : ''}`,
    );
  }
  return out;
}
