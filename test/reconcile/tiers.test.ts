import { describe, expect, it } from "vitest";
import { encodeProxmoxEnv } from "../../src/gateway/env.js";
import { parseEnv } from "../../src/proxmox/normalize.js";
import type { ContainerConfig, ObservedContainer } from "../../src/reconcile/model.js";
import { classify, envApplied, mergedEnv, staleEnvKeys, type Tier } from "../../src/reconcile/tiers.js";
import { IMAGE_ENV, configFor, desiredFor, runningContainer } from "./fixtures.js";

const desired = desiredFor().servers[0]!;
const current = runningContainer(desired, 101) as ObservedContainer & { config: ContainerConfig };
const currentTags = String(current.config.tags);
const withConfig = (change: Partial<ContainerConfig>): ObservedContainer => ({
  ...current,
  config: { ...current.config, ...change },
});
const envWith = (extra: ReadonlyArray<readonly [string, string]>, server = desired) =>
  encodeProxmoxEnv([...IMAGE_ENV, ...server.env, ...extra]);
const otherUri = desiredFor({}, "postgres://manager:rotated@db.example.com:5432/manager").servers[0]!;

describe("classify", () => {
  interface Row {
    name: string;
    container: ObservedContainer;
    recorded?: string[];
    tier: Tier;
    detail?: object;
  }
  const rows: Row[] = [
    { name: "as the spec says", container: current, tier: "inSync" },
    {
      name: "a foreign tag beside ours (kept, not drift)",
      container: withConfig({ tags: `${currentTags};backup` }),
      tier: "inSync",
    },
    {
      name: "the image's own variables in the env",
      container: withConfig({ env: envWith([["TZ", "UTC"]]) }),
      tier: "inSync",
    },
    {
      name: "memory changed by hand",
      container: withConfig({ memory: 2048 }),
      tier: "inPlace",
      detail: { update: { set: { memory: "512" }, delete: [] } },
    },
    {
      name: "onboot and description changed",
      container: withConfig({ onboot: 0, description: "mine now" }),
      tier: "inPlace",
      detail: { update: { set: { onboot: "1", description: desired.inPlace.description }, delete: [] } },
    },
    {
      name: "an old config tag on a container whose env is already current (after a restart)",
      container: withConfig({ tags: currentTags.replace(desired.configHash, "0000000000000000") }),
      tier: "inPlace",
    },
    {
      name: "the SQL URI rotated: the env differs",
      container: runningContainer(otherUri, 101),
      tier: "restart",
      detail: { envPending: false },
    },
    {
      name: "the env differs and ours waits for the next start",
      container: {
        ...runningContainer(otherUri, 101),
        pending: { env: envWith([]) },
      },
      tier: "restart",
      detail: { envPending: true },
    },
    {
      name: "the env differs and someone else's waits",
      container: { ...runningContainer(otherUri, 101), pending: { env: encodeProxmoxEnv(IMAGE_ENV) } },
      tier: "restart",
      detail: { envPending: false },
    },
    {
      name: "a variable the operator owns is left over (notifications turned off)",
      container: withConfig({ env: envWith([["NOTIFICATION_URL", "https://push.example.com/x"]]) }),
      tier: "restart",
    },
    {
      name: "an extra variable the operator wrote was removed from the spec",
      container: withConfig({ env: envWith([["LOG_LEVEL", "debug"]]) }),
      recorded: ["LOG_LEVEL"],
      tier: "restart",
    },
    {
      name: "the image env only (just created): ours is missing",
      container: withConfig({ env: encodeProxmoxEnv(IMAGE_ENV) }),
      tier: "restart",
    },
    {
      name: "another build hash (new image)",
      container: { ...current, buildHash: "ffffffffffffffff" },
      tier: "rebuild",
      detail: { reason: expect.stringMatching(/build hash ffffffffffffffff differs/) },
    },
    {
      name: "on another node than the spec says",
      container: { ...current, node: "pve2" },
      tier: "rebuild",
      detail: { reason: "it is on node pve2, the spec wants pve1" },
    },
    {
      name: "no build tag, but the config hash matches",
      container: { ...current, buildHash: undefined },
      tier: "inSync",
    },
    {
      name: "no build tag and another config hash",
      container: { ...current, buildHash: undefined, configHash: "0000000000000000" },
      tier: "rebuild",
    },
    {
      name: "a rebuild wins over an env and a memory difference",
      container: { ...runningContainer(otherUri, 101), buildHash: "ffffffffffffffff" },
      tier: "rebuild",
    },
    {
      name: "a restart wins over a memory difference",
      container: { ...runningContainer(otherUri, 101), config: { ...configFor(otherUri), memory: 64 } },
      tier: "restart",
    },
  ];
  it.each(rows)("$name -> $tier", ({ container, recorded, tier, detail }) => {
    const verdict = classify(container as Parameters<typeof classify>[0], desired, recorded);
    expect(verdict.tier).toBe(tier);
    if (detail) expect(verdict).toMatchObject(detail);
  });
});

describe("the env", () => {
  it("merges ours over the image's, drops stale variables, keeps the image's order first", () => {
    const before = encodeProxmoxEnv([
      ["PATH", "/bin"],
      ["LDAP_COMMON_NAME", "old"],
      ["LOG_LEVEL", "debug"],
      ["NOTIFICATION_URL", "https://x"],
      ["TZ", "UTC"],
    ]);
    const stale = staleEnvKeys(desired, ["LOG_LEVEL"]);
    const merged = mergedEnv(before, desired, stale);
    const entries = [...parseEnv(merged)];
    expect(entries.slice(0, 2)).toEqual([
      ["PATH", "/bin"],
      ["TZ", "UTC"],
    ]);
    expect(entries.slice(2)).toEqual(desired.env);
    expect(envApplied(merged, desired, stale)).toBe(true);
    expect(envApplied(before, desired, stale)).toBe(false);
  });

  it("never counts a variable the spec still wants as stale", () => {
    const spec = desiredFor({ extraEnv: [{ name: "LOG_LEVEL", value: "info" }] }).servers[0]!;
    expect(staleEnvKeys(spec, ["LOG_LEVEL"])).not.toContain("LOG_LEVEL");
    expect(staleEnvKeys(spec, [])).toContain("NOTIFICATION_URL");
  });
});
