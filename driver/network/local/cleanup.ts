// Removes everything a prefix names: the processes left in its namespaces (killed), the
// namespaces, then its links (bridges and veth ends) where `netns` says (the host by default).
// For leftovers of a crashed controller and for tests' afterAll.
import { deleteLink, deleteNamespace, listLinks, listNamespaces, namespaceExists, namespacePids, type Where } from './ip.ts';
import { hasPrefix } from './names.ts';

export interface Removed {
  namespaces: string[];
  links: string[];
  killed: number[];
}

export async function cleanupLocalNetwork(prefix: string, where: Where = {}): Promise<Removed> {
  const removed: Removed = { namespaces: [], links: [], killed: [] };
  for (const ns of (await listNamespaces()).filter((n) => hasPrefix(prefix, n))) {
    for (const pid of await namespacePids(ns)) {
      if (killIfRunning(pid)) removed.killed.push(pid);
    }
    await deleteNamespace(ns);
    removed.namespaces.push(ns);
  }
  // `where` may be one of the namespaces just deleted: then its links went with it.
  if (!where.netns || (await namespaceExists(where.netns))) {
    for (const link of (await listLinks(where)).filter((l) => hasPrefix(prefix, l.name))) {
      await deleteLink(link.name, where);
      removed.links.push(link.name);
    }
  }
  return removed;
}

/** SIGKILL; true if it was sent, false if the process was already gone. */
export function killIfRunning(pid: number): boolean {
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}
