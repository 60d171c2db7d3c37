/**
 * The uid of the process on the other end of an admin socket connection,
 * for the audit log. Node exposes no SO_PEERCRED, so this asks the kernel
 * the long way: our end's inode (/proc/self/fd), its peer's inode (`ss -xn`,
 * iproute2: sock_diag is the only place the kernel says which socket is
 * connected to which; for a client in another network namespace, that
 * namespace's table, through nsenter), the process that holds the peer inode (a scan of
 * /proc/PID/fd, which works whatever network namespace the client is in:
 * `ss -p` only names processes of our own namespace, so a client in another
 * one was audited as uid null), and that pid's real uid (/proc/PID/status).
 *
 * Cost: one lookup per connection (memoized), and concurrent lookups share
 * one `ss` run: 320 parallel requests used to fork 320 children (13 s).
 * Best effort: null where any step is unavailable — the socket's mode
 * (0600/0660) is what keeps strangers out, this only says which permitted
 * user acted.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';

const SS_TIMEOUT_MS = 2000;

/** One lookup per connection: the process at the other end does not change. */
const known = new WeakMap<Socket, Promise<number | null>>();
/** The `ss` run under way, shared by every lookup that starts while it runs. */
let table: Promise<Map<string, string>> | undefined;

export function peerUid(socket: Socket): Promise<number | null> {
  let uid = known.get(socket);
  if (!uid) {
    uid = lookup(socket);
    known.set(socket, uid);
  }
  return uid;
}

async function lookup(socket: Socket): Promise<number | null> {
  try {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return null;
    const ours = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
    if (!ours) return null;
    // The server end of a connection from another network namespace is a
    // socket of that namespace (the kernel makes it on the client's side), so
    // it is listed there, not in ours.
    const peer = (await peersByInode()).get(ours) ?? (await peerInOtherNamespaces(ours));
    if (!peer) return null;
    const pid = holderOf(peer);
    if (!pid) return null;
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return uid === undefined ? null : Number(uid);
  } catch {
    return null;
  }
}

/** Unix socket inode → its peer's inode, from one `ss -xn` run shared by concurrent callers. */
function peersByInode(): Promise<Map<string, string>> {
  table ??= ssTable('ss', ['-xn']).finally(() => (table = undefined));
  return table;
}

/**
 * Our socket's peer, looked up in every other network namespace a process
 * can be seen in (`nsenter --net`, root only; elsewhere it stays null).
 * Only for a connection not found in our own namespace: rare, and once per
 * connection.
 */
async function peerInOtherNamespaces(ours: string): Promise<string | undefined> {
  const seen = new Set<string>([readlinkSync('/proc/self/ns/net')]);
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let ns: string;
    try {
      ns = readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      continue; // gone, or not ours to read
    }
    if (seen.has(ns)) continue;
    seen.add(ns);
    const peer = (await ssTable('nsenter', [`--net=/proc/${pid}/ns/net`, 'ss', '-xn'])).get(ours);
    if (peer) return peer;
  }
  return undefined;
}

/** Run `ss -xn` (through `command`): each unix socket inode → its peer's inode. */
function ssTable(command: string, args: string[]): Promise<Map<string, string>> {
  return new Promise<Map<string, string>>((resolve) => {
    execFile(command, args, { timeout: SS_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, out) => {
      const peers = new Map<string, string>();
      if (!err) {
        for (const line of out.split('\n')) {
          // Netid State Recv-Q Send-Q LocalAddr LocalInode PeerAddr PeerInode
          const t = line.trim().split(/\s+/);
          if (t.length < 8 || !/^\d+$/.test(t[5]!) || !/^\d+$/.test(t[7]!)) continue;
          peers.set(t[5]!, t[7]!);
        }
      }
      resolve(peers);
    });
  });
}

/** The pid of a process holding socket inode `inode` (any network namespace, this pid namespace). */
function holderOf(inode: string): string | undefined {
  const target = `socket:[${inode}]`;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return pid;
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}
