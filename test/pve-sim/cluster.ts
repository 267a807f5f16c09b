/** Cluster-wide calls (nextid, resources), nodes, version, node DNS, tasks and ticket login. */
import { checkPriv, hasPriv, hasVmPriv } from "./auth.js";
import { state, volumesOf, type SimCore } from "./core.js";
import { PveError, paramError } from "./errors.js";
import type { Lxc } from "./lxc.js";
import { routeInput, type RouteContext } from "./router.js";
import { isIP } from "./schema.js";
import type { TaskState } from "./state.js";
import { parseUpid } from "./upid.js";

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
        if (hasVmPriv(c.identity, ct.vmid, ct.pool, "VM.Audit"))
          out.push({ id: `lxc/${ct.vmid}`, node: ct.node, ...lxc.summary(ct) });
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

  // Node DNS: per node, Sys.Audit to read, Sys.Modify to change.
  r.get("/nodes/{node}/dns", (c: RouteContext) => {
    const node = c.params["node"]!;
    checkPriv(c.identity, `/nodes/${node}`, ["Sys.Audit"]);
    return { ...(state(core).dns[node] ?? core.config.dns) };
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
    const dns: { search: string; dns1?: string; dns2?: string; dns3?: string } = {
      search: String(p["search"]),
    };
    for (const k of ["dns1", "dns2", "dns3"] as const) if (p[k] !== undefined) dns[k] = String(p[k]);
    state(core).dns[node] = dns;
    core.store.changed();
    return null;
  });

  // Tasks. A caller sees its own tasks, others' only with Sys.Audit on the node.
  const task = (c: RouteContext): TaskState => {
    const node = c.params["node"]!;
    const upid = c.params["upid"]!;
    const decoded = parseUpid(upid);
    if (!decoded) throw paramError({ upid: "unable to parse worker upid" });
    const t = core.tasks.get(upid);
    if (!t || decoded.node !== node) throw paramError({ upid: "no such task" });
    if (t.user !== c.identity.authid) checkPriv(c.identity, `/nodes/${node}`, ["Sys.Audit"]);
    return t;
  };
  const taskStatus = (t: TaskState) => ({
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    user: t.user,
    ...(t.user.includes("!") ? { tokenid: t.user.slice(t.user.indexOf("!") + 1) } : {}),
    status: t.status,
    ...(t.status === "stopped" ? { exitstatus: t.exitstatus ?? "unexpected status" } : {}),
  });
  r.get("/nodes/{node}/tasks/{upid}/status", (c) => taskStatus(task(c)));
  r.get("/nodes/{node}/tasks/{upid}/log", (c) => {
    const t = task(c);
    const p = routeInput(c, {
      properties: {
        start: { type: "integer", minimum: 0, default: 0 },
        limit: { type: "integer", minimum: 0, default: 50 },
        download: { type: "boolean", optional: true },
      },
    });
    const start = Number(p["start"]);
    const limit = Number(p["limit"]);
    return t.log.slice(start, start + limit).map((text, i) => ({ n: start + i + 1, t: text }));
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
        source: { type: "string", optional: true, enum: ["archive", "active", "all"] },
        errors: { type: "boolean", optional: true },
        statusfilter: { type: "string", optional: true },
        since: { type: "integer", optional: true },
        until: { type: "integer", optional: true },
      },
      additionalProperties: false,
    });
    const audit = hasPriv(c.identity, `/nodes/${node}`, "Sys.Audit");
    const list = core.tasks
      .list()
      .filter((t) => t.node === node && (audit || t.user === c.identity.authid))
      .filter((t) => p["typefilter"] === undefined || t.type === p["typefilter"])
      .filter((t) => p["vmid"] === undefined || t.id === String(p["vmid"]))
      .filter((t) => p["userfilter"] === undefined || t.user.includes(String(p["userfilter"])))
      .filter((t) => p["source"] !== "active" || t.status === "running")
      .filter((t) => p["errors"] !== 1 || (t.status === "stopped" && t.exitstatus !== "OK"))
      .reverse();
    const start = Number(p["start"]);
    return list.slice(start, start + Number(p["limit"])).map((t) => ({
      ...taskStatus(t),
      ...(t.endtime !== undefined ? { endtime: t.endtime, status: t.exitstatus } : { status: undefined }),
    }));
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
