/**
 * Where a webhook may point. Merchants choose the URL but the POST leaves from inside the
 * deployment, so loopback, private, link-local (cloud metadata), multicast and other special
 * addresses are refused unless the operator allows their range (WEBHOOK_ALLOW_PRIVATE). The check
 * runs on every resolved address, at registration and again right before each delivery connects,
 * and the connection goes to the address that was checked, so a name re-pointed inside (DNS
 * rebinding) is refused too.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

export type ResolvedTarget = { address: string; family: 4 | 6 };

/** The target is not allowed, or cannot be checked; the message is safe to show the merchant. */
export class RefusedWebhookTarget extends Error {}

function blockListOf(ranges: readonly string[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) {
    const [address, prefix] = range.split('/');
    list.addSubnet(address, Number(prefix), isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** BlockList matches IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) against the IPv4 ranges too. */
const REFUSED_RANGES: readonly { kind: string; ranges: BlockList }[] = [
  { kind: 'loopback', ranges: blockListOf(['127.0.0.0/8', '::1/128']) },
  { kind: 'unspecified', ranges: blockListOf(['0.0.0.0/8', '::/128']) },
  { kind: 'private', ranges: blockListOf(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']) },
  { kind: 'link-local or metadata', ranges: blockListOf(['169.254.0.0/16', 'fe80::/10', 'fec0::/10']) },
  { kind: 'multicast', ranges: blockListOf(['224.0.0.0/4', 'ff00::/8']) },
  {
    kind: 'reserved',
    ranges: blockListOf(['192.0.0.0/24', '192.0.2.0/24', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '240.0.0.0/4', '100::/64', '2001:db8::/32']),
  },
];

/** What kind of special address this is, or null for an ordinary public one. */
export function refusedKindOf(address: string): string | null {
  const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  return REFUSED_RANGES.find(({ ranges }) => ranges.check(address, type))?.kind ?? null;
}

/** The operator's allow-list (WEBHOOK_ALLOW_PRIVATE, already validated as CIDRs). */
export function allowListOf(cidrs: readonly string[]): BlockList {
  return blockListOf(cidrs);
}

function checked(target: ResolvedTarget, host: string, allowed: BlockList): ResolvedTarget {
  const kind = refusedKindOf(target.address);
  if (kind !== null && !allowed.check(target.address, target.family === 6 ? 'ipv6' : 'ipv4')) {
    throw new RefusedWebhookTarget(`${host} is a ${kind} address; webhooks must reach a public address`);
  }
  return target;
}

/**
 * Resolves the URL's host and checks every address it resolves to (one bad address is enough to
 * refuse: the connection could go to any of them); answers the address to connect to.
 */
export async function resolveWebhookTarget(url: URL, allowed: BlockList): Promise<ResolvedTarget> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const literal = isIP(host);
  if (literal !== 0) return checked({ address: host, family: literal as 4 | 6 }, url.hostname, allowed);
  let addresses: { address: string; family: number }[];
  try {
    addresses = await lookup(host, { all: true, verbatim: true });
  } catch {
    throw new RefusedWebhookTarget(`${url.hostname} does not resolve`);
  }
  if (addresses.length === 0) throw new RefusedWebhookTarget(`${url.hostname} does not resolve`);
  const targets = addresses.map(({ address, family }) => checked({ address, family: family === 6 ? 6 : 4 }, `${url.hostname} (${address})`, allowed));
  return targets[0];
}
