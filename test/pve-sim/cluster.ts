/** Cluster-wide calls (nextid, resources), nodes, version, node DNS, tasks and ticket login. */
import { checkPriv, hasPriv, hasVmPriv } from "./auth.js";
import { state, volumesOf, type SimCore } from "./core.js";
import { PveError, paramError } from "./errors.js";
import type { Lxc } from "./lxc.js";
import { routeInput, WithAttributes, type RouteContext } from "./router.js";
import { isIP } from "./schema.js";
import type { ContainerState, DnsState, TaskState } from "./state.js";
import { logPage, selectTasks, statusFilterFormat, wantedStatusTypes } from "./tasks.js";
import { ownsTask, parseUpid, splitAuthid } from "./upid.js";

export const PVE_VERSION = { version: "9.1.1", release: "9.1", repoid: "42ab3f1b" };

export function registerCluster(core: SimCore, lxc: Lxc): void {
  const r = core.router;

  r.get("/version", () => PVE_VERSION);

  r.get("/nodes", () =>
    core.config.nodes.map((node) => ({
      node,
      status: core.faults.unreachableNode(node) ? "offline" : "online",
      type: "node",
      id: `node/${node}`,
      maxcpu: 8,
      maxmem: 32 * 1024 ** 3,
      level: "",
    })),
  );

  // The lowest free vmid. Nothing is reserved: two creators asking at once get the same number. With
  // `vmid` it checks that one and echoes it back as sent (hence "a number, sometimes a string").
  r.get("/cluster/nextid", (c: RouteContext) => {
    const p = routeInput(c, {
      properties: { vmid: { type: "integer", optional: true, minimum: 100, maximum: 999999999 } },
    });
    const used = state(core).containers;
    if (p["vmid"] !== undefined) {
      if (used[String(p["vmid"])]) throw paramError({ vmid: `VM ${p["vmid"]} already exists` });
      return String(c.input["vmid"]);
    }
    for (let i = 100; i < 1_000_000; i++) if (!used[String(i)]) return i;
    throw new PveError(500, "unable to get any free VMID in range [100, 999999]");
  });

  r.get("/cluster/resources", (c: RouteContext) => {
    const p = routeInput(c, {
      properties: { type: { type: "string", optional: true, enum: ["vm", "storage", "node", "sdn"] } },
    });
    const type = p["type"];
    const out: Record<string, unknown>[] = [];
    if (type === undefined || type === "vm")
      for (const ct of Object.values(state(core).containers))
        if (hasVmPriv(c.identity, ct.vmid, ct.pool, "VM.Audit")) out.push(lxcResource(ct, lxc.summary(ct)));
    if (type === undefined || type === "node")
      for (const node of core.config.nodes)
        if (hasPriv(c.identity, `/nodes/${node}`, "Sys.Audit"))
          out.push({
            id: `node/${node}`,
            type: "node",
            node,
            status: "online",
            maxcpu: 8,
            maxmem: 32 * 1024 ** 3,
            uptime: 86400,
          });
    if (type === undefined || type === "storage")
      for (const node of core.config.nodes)
        for (const s of core.config.storages)
          if (
            (!s.nodes || s.nodes.includes(node)) &&
            hasPriv(c.identity, `/storage/${s.id}`, "Datastore.Audit")
          ) {
            const disk = volumesOf(core, s, node).reduce((a, v) => a + v.size, 0);
            out.push({
              id: `storage/${node}/${s.id}`,
              type: "storage",
              node,
              storage: s.id,
              status: "available",
              content: s.content.join(","),
              shared: s.shared ? 1 : 0,
              disk,
              maxdisk: 100 * 1024 ** 3,
            });
          }
    return out;
  });

  // Node DNS: per node, Sys.Audit to read, Sys.Modify to change. The state holds /etc/resolv.conf as PUT
  // wrote it; GET reads it back the way PVE parses that file.
  r.get("/nodes/{node}/dns", (c: RouteContext) => {
    const node = c.params["node"]!;
    checkPriv(c.identity, `/nodes/${node}`, ["Sys.Audit"]);
    return readResolvConf(state(core).dns[node] ?? core.config.dns);
  });
  r.put("/nodes/{node}/dns", (c: RouteContext) => {
    const node = c.params["node"]!;
    const ip = {
      type: "string" as const,
      optional: true,
      format: (v: string) => (isIP(v) ? undefined : "value does not look like a valid IP address"),
    };
    const p = routeInput(c, { properties: { search: { type: "string" }, dns1: ip, dns2: ip, dns3: ip } });
    checkPriv(c.identity, `/nodes/${node}`, ["Sys.Modify"]);
    const given = (k: string) => (p[k] === undefined ? undefined : String(p[k]));
    state(core).dns[node] = writeResolvConf(String(p["search"]), [
      given("dns1"),
      given("dns2"),
      given("dns3"),
    ]);
    core.store.changed();
    return null;
  });

  // Tasks. A caller sees its own tasks (a user also its tokens' tasks), others' only with Sys.Audit.
  const task = (c: RouteContext): TaskState => {
    const node = c.params["node"]!;
    const upid = c.params["upid"]!;
    const decoded = parseUpid(upid);
    if (!decoded) throw paramError({ upid: "unable to parse worker upid" });
    const t = core.tasks.get(upid);
    if (!t || decoded.node !== node) throw paramError({ upid: "no such task" });
    if (!ownsTask(t.user, c.identity.authid)) checkPriv(c.identity, `/nodes/${node}`, ["Sys.Audit"]);
    return t;
  };
  r.get("/nodes/{node}/tasks/{upid}/status", (c) => {
    const t = task(c);
    return {
      ...taskFields(t),
      status: t.status,
      ...(t.status === "stopped" ? { exitstatus: t.exitstatus ?? "unexpected status" } : {}),
    };
  });
  r.get("/nodes/{node}/tasks/{upid}/log", (c) => {
    const t = task(c);
    const p = routeInput(c, {
      properties: {
        start: { type: "integer", minimum: 0, default: 0 },
        limit: { type: "integer", minimum: 0, default: 50 },
        download: { type: "boolean", optional: true },
      },
    });
    const page = logPage(t.log, Number(p["start"]), Number(p["limit"]));
    return new WithAttributes(page.items, { total: page.total });
  });
  r.get("/nodes/{node}/tasks/{upid}", (c) => {
    task(c);
    return [{ name: "log" }, { name: "status" }];
  });
  r.get("/nodes/{node}/tasks", (c) => {
    const node = c.params["node"]!;
    const p = routeInput(c, {
      properties: {
        start: { type: "integer", minimum: 0, default: 0 },
        limit: { type: "integer", minimum: 0, default: 50 },
        typefilter: { type: "string", optional: true },
        vmid: { type: "integer", optional: true },
        userfilter: { type: "string", optional: true },
        source: { type: "string", enum: ["archive", "active", "all"], default: "archive" },
        errors: { type: "boolean", optional: true },
        statusfilter: { type: "string", optional: true, format: statusFilterFormat },
        since: { type: "integer", optional: true },
        until: { type: "integer", optional: true },
      },
      additionalProperties: false,
    });
    const audit = hasPriv(c.identity, `/nodes/${node}`, "Sys.Audit");
    const userfilter = p["userfilter"] === undefined ? undefined : String(p["userfilter"]).toLowerCase();
    const matches = (t: TaskState): boolean =>
      t.node === node &&
      (audit || ownsTask(t.user, c.identity.authid)) &&
      (userfilter === undefined || splitAuthid(t.user).user.toLowerCase().includes(userfilter)) &&
      (p["typefilter"] === undefined || t.type === p["typefilter"]) &&
      (p["vmid"] === undefined || t.id === String(p["vmid"])) &&
      (p["since"] === undefined || t.starttime >= Number(p["since"])) &&
      (p["until"] === undefined || t.starttime <= Number(p["until"]));
    const page = selectTasks(core.tasks.list(), {
      source: p["source"] as "archive" | "active" | "all",
      statusTypes: wantedStatusTypes(p["statusfilter"] as string | undefined, p["errors"] === 1),
      matches,
      start: Number(p["start"]),
      limit: Number(p["limit"]),
    });
    return new WithAttributes(page.items.map(taskListEntry), { total: page.total });
  });

  r.post(
    "/access/ticket",
    (c: RouteContext) => {
      const p = routeInput(c, {
        properties: {
          username: { type: "string" },
          password: { type: "string" },
          realm: { type: "string", optional: true },
          otp: { type: "string", optional: true },
          "new-format": { type: "boolean", optional: true },
        },
      });
      const t = core.auth.login(
        String(p["username"]),
        String(p["password"]),
        p["realm"] as string | undefined,
      );
      return { ...t, cap: {} };
    },
    { auth: false },
  );
}

/** What a task shows of its UPID; the token's owner as `user` and its name as `tokenid`. */
function taskFields(t: TaskState): Record<string, unknown> {
  return {
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    ...splitAuthid(t.user),
  };
}

/** A task list entry: an active task has the status `RUNNING`, an archived one its exit status and end time. */
export function taskListEntry(t: TaskState): Record<string, unknown> {
  return t.status === "running"
    ? { ...taskFields(t), status: "RUNNING" }
    : { ...taskFields(t), endtime: t.endtime, status: t.exitstatus ?? "unexpected status" };
}

/**
 * A container in /cluster/resources: these keys and no others (no `cpus`, `swap`), `template` always 0 or
 * 1, `tags` as the config stores them, `lock` only while locked. `summary` is the node's listing entry.
 */
export function lxcResource(ct: ContainerState, summary: Record<string, unknown>): Record<string, unknown> {
  const conf = ct.conf;
  return {
    id: `lxc/${ct.vmid}`,
    type: "lxc",
    vmid: ct.vmid,
    name: summary["name"],
    node: ct.node,
    status: ct.status,
    ...(conf["tags"] !== undefined ? { tags: String(conf["tags"]) } : {}),
    template: Number(conf["template"] ?? 0) === 1 ? 1 : 0,
    maxcpu: summary["cpus"],
    maxmem: summary["maxmem"],
    mem: summary["mem"],
    maxdisk: summary["maxdisk"],
    disk: summary["disk"],
    uptime: summary["uptime"],
    ...(conf["lock"] !== undefined ? { lock: conf["lock"] } : {}),
  };
}

/** The nameservers as /etc/resolv.conf holds them: each once, in the order given. */
function nameservers(list: readonly (string | undefined)[]): string[] {
  return [...new Set(list.filter((x): x is string => !!x))];
}

type Nameservers = Pick<DnsState, "dns1" | "dns2" | "dns3">;

function numbered(servers: readonly string[]): Nameservers {
  const out: Nameservers = {};
  servers.slice(0, 3).forEach((ns, i) => (out[`dns${i + 1}` as keyof Nameservers] = ns));
  return out;
}

/** PUT /nodes/{node}/dns writes the search line as given and one `nameserver` line per distinct server. */
export function writeResolvConf(search: string, dns: readonly (string | undefined)[]): DnsState {
  return { search, ...numbered(nameservers(dns)) };
}

/** GET /nodes/{node}/dns reads the file back: the first search domain, the nameservers numbered from dns1. */
export function readResolvConf(file: DnsState): Partial<DnsState> {
  const first = file.search.trim().split(/\s+/)[0];
  return { ...(first ? { search: first } : {}), ...numbered(nameservers([file.dns1, file.dns2, file.dns3])) };
}
