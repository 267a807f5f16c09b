/**
 * What a site adds around the Proxmox cluster for the LDAP pair: the gateway image in the catalog (run by
 * the stand-in under test/gateway, or by another gateway build), the site's DNSMasq following the
 * containers' hostnames and addresses, and LDAP realms with a real sync. `attachLdapSite(sim)` wires all
 * three into a running simulator.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gatewayCommand, parseStartupScale } from "../gateway/launch.js";
import type { CatalogEntry } from "./config.js";
import { DnsServer } from "./dns-server.js";
import { registerRealms, setDnsPort } from "./realms.js";
import { containerWorkDir } from "./runtime.js";
import type { ContainerEvent, PveSimulator } from "./simulator.js";

export const LDAP_GATEWAY_IMAGE = "ghcr.io/mieweb/ldap-gateway";

/** Working directory of each gateway container's process; `{vmid}` gives each container its own. */
export const GATEWAY_CWD_VAR = "PVE_SIM_GATEWAY_CWD";
/** The stand-in's start-up time as a share of the real gateway's (default 1; 0: as fast as it can). */
export const GATEWAY_STARTUP_SCALE_VAR = "PVE_SIM_GATEWAY_STARTUP_SCALE";

let defaultWorkRoot: string | undefined;

/** One temporary directory per process for the containers' working directories, removed when it exits. */
function workRoot(): string {
  if (defaultWorkRoot) return defaultWorkRoot;
  const root = mkdtempSync(path.join(tmpdir(), "pve-sim-gateway-"));
  process.once("exit", () => rmSync(root, { recursive: true, force: true }));
  defaultWorkRoot = root;
  return root;
}

export interface GatewayImageOptions {
  /** Where the PVE_SIM_GATEWAY_* variables are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The stand-in's start-up scale (default PVE_SIM_GATEWAY_STARTUP_SCALE, else 1: as slow as the real one). */
  startupScale?: number;
}

/**
 * Catalog entry for `ghcr.io/mieweb/ldap-gateway:*`: the image's Env, Entrypoint and Cmd as the real
 * image (node:24-slim) has them, run by the stand-in, or by the argv in PVE_SIM_GATEWAY_COMMAND (JSON) in
 * PVE_SIM_GATEWAY_CWD (default: a directory per container under a temporary one). The container's env is
 * passed as is; the simulator adds BIND_IP (the container's own address), which stands in for the
 * container's network namespace.
 */
export async function ldapGatewayImage(opts: GatewayImageOptions = {}): Promise<CatalogEntry> {
  const env = opts.env ?? process.env;
  const startupScale =
    opts.startupScale ?? parseStartupScale(GATEWAY_STARTUP_SCALE_VAR, env[GATEWAY_STARTUP_SCALE_VAR]) ?? 1;
  return {
    pattern: `${LDAP_GATEWAY_IMAGE}:*`,
    env: [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "NODE_VERSION=24.11.1",
      "YARN_VERSION=1.22.22",
    ],
    entrypoint: ["docker-entrypoint.sh"],
    cmd: ["node", "index.js"],
    command: await gatewayCommand({ env, startupScale }),
    cwd: env[GATEWAY_CWD_VAR] || path.join(workRoot(), "ct{vmid}"),
    port: 636,
  };
}

export interface LdapSiteOptions {
  /** The site's internal domain, used as DNS search domain (default example.com). */
  searchDomain?: string;
  /** Point every node's DNS (`/nodes/{node}/dns`) at the site DNS, as the seed's setup step says (default true). */
  configureNodes?: boolean;
  /** Also re-read every container this often (default: never; the simulator's events suffice). */
  pollMs?: number;
}

export interface LdapSite {
  dns: DnsServer;
  /** The DNS server's address as a node's dns1 holds it. */
  dnsAddress: string;
  /** Brings the DNS records in line with the containers' state now (done on attach). */
  reconcile(): void;
  stop(): Promise<void>;
}

/**
 * Starts the site DNS on a loopback address of the simulator's block (port 53 when allowed, else a free
 * port), keeps its records in line with the running containers through the simulator's container events
 * (a started container registers its hostname, as DNSMasq does on its DHCP lease; a stopped or destroyed
 * one goes away), and registers the realm routes.
 */
export async function attachLdapSite(sim: PveSimulator, opts: LdapSiteOptions = {}): Promise<LdapSite> {
  const core = sim.core;
  const searchDomain = opts.searchDomain ?? "example.com";
  const host = `127.${core.addresses.octet}.255.254`;
  let dns = new DnsServer({ host, port: 53, searchDomain });
  try {
    await dns.start();
  } catch {
    // Not root (or 53 taken): any port; the realm sync is told where it is.
    dns = new DnsServer({ host, port: 0, searchDomain });
    await dns.start();
  }
  setDnsPort(core, host, dns.address.port);
  // Idempotent: a later registration of the same routes replaces the earlier one.
  registerRealms(core);

  if (opts.configureNodes ?? true) {
    for (const node of core.config.nodes) core.store.data.dns[node] = { search: searchDomain, dns1: host };
    core.store.changed();
  }

  // vmid -> the record it owns, so a stop, a rename or a new address removes exactly the old record.
  const owned = new Map<number, { name: string; ip: string }>();
  const register = (vmid: number, name: string, ip: string): void => {
    const prev = owned.get(vmid);
    if (prev && prev.name === name && prev.ip === ip && dns.lookup(name) === ip) return;
    if (prev) dns.removeRecord(prev.name, prev.ip);
    dns.setRecord(name, ip);
    owned.set(vmid, { name, ip });
  };
  const unregister = (vmid: number): void => {
    const prev = owned.get(vmid);
    if (prev) dns.removeRecord(prev.name, prev.ip);
    owned.delete(vmid);
  };
  const reconcile = (): void => {
    const running = new Set<number>();
    for (const ct of Object.values(core.store.data.containers)) {
      if (ct.status !== "running") continue;
      running.add(ct.vmid);
      register(ct.vmid, String(ct.conf["hostname"] ?? `CT${ct.vmid}`), ct.address);
    }
    for (const vmid of [...owned.keys()]) if (!running.has(vmid)) unregister(vmid);
  };
  // A container's filesystem is new when it is created and gone when it is destroyed: so is its working
  // directory (a gateway made after another of the same vmid makes its own certificate again).
  const clearWorkDirs = (vmid: number): void => {
    for (const entry of core.config.catalog) {
      if (entry.cwd?.includes("{vmid}"))
        rmSync(containerWorkDir(entry.cwd, vmid), { recursive: true, force: true });
    }
  };
  const onEvent = (e: ContainerEvent): void => {
    if (e.kind === "started" || e.kind === "booted") register(e.vmid, e.hostname, e.address);
    else if (e.kind === "stopped" || e.kind === "destroyed") unregister(e.vmid);
    if (e.kind === "created" || e.kind === "destroyed") clearWorkDirs(e.vmid);
  };
  sim.events.on("container", onEvent);
  reconcile();
  const timer = opts.pollMs ? setInterval(reconcile, opts.pollMs) : undefined;
  timer?.unref();

  return {
    dns,
    dnsAddress: host,
    reconcile,
    async stop() {
      sim.events.off("container", onEvent);
      if (timer) clearInterval(timer);
      await dns.stop();
    },
  };
}
