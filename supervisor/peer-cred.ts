/**
 * The uid of the process on the other end of an admin socket connection,
 * for the audit log. Node exposes no SO_PEERCRED, so this asks the kernel
 * the long way: our end's inode (/proc/self/fd), its peer's inode and
 * owning pid (`ss -xpn`, iproute2), and that pid's real uid
 * (/proc/PID/status). Best effort: null where any step is unavailable —
 * the socket's mode (0600/0660) is what keeps strangers out, this only
 * says which permitted user acted.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';

const SS_TIMEOUT_MS = 2000;

export async function peerUid(socket: Socket): Promise<number | null> {
  try {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return null;
    const ours = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
    if (!ours) return null;
    const table = await ssUnix();
    const peer = table.find((row) => row.inode === ours)?.peer;
    const pid = table.find((row) => row.inode === peer)?.pid;
    if (!pid) return null;
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return uid === undefined ? null : Number(uid);
  } catch {
    return null;
  }
}

interface UnixRow {
  inode: string;
  peer: string;
  pid: string | undefined;
}

function ssUnix(): Promise<UnixRow[]> {
  return new Promise((resolve) => {
    execFile(
      'ss',
      ['-xpn'],
      { timeout: SS_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (err, out) => {
        if (err) return resolve([]);
        const rows: UnixRow[] = [];
        for (const line of out.split('\n')) {
          // Netid State Recv-Q Send-Q LocalAddr LocalInode PeerAddr PeerInode [users:((…,pid=N,…))]
          const t = line.trim().split(/\s+/);
          if (t.length < 8 || !/^\d+$/.test(t[5]!) || !/^\d+$/.test(t[7]!)) continue;
          rows.push({ inode: t[5]!, peer: t[7]!, pid: /pid=(\d+)/.exec(line)?.[1] });
        }
        resolve(rows);
      },
    );
  });
}
