import { describe, expect, it } from "vitest";
import { addFinalizer, hasFinalizer, isDeleting, removeFinalizer } from "../../src/runtime/finalizers.js";
import type { KubeObject, ResourceClient } from "../../src/runtime/resource.js";

function fakeClient() {
  const patches: unknown[] = [];
  const client = {
    patch: async (_ns: string, name: string, body: { metadata: { finalizers: string[] } }) => {
      patches.push(body);
      return { metadata: { name, finalizers: body.metadata.finalizers } };
    },
  } as unknown as ResourceClient;
  return { client, patches };
}

const obj = (finalizers?: string[], deleting = false): KubeObject => ({
  metadata: {
    name: "a",
    namespace: "ns",
    resourceVersion: "42",
    ...(finalizers ? { finalizers } : {}),
    ...(deleting ? { deletionTimestamp: new Date() } : {}),
  },
});

describe("finalizers", () => {
  it("adds with the resourceVersion it read, keeping the others", async () => {
    const { client, patches } = fakeClient();
    const updated = await addFinalizer(client, obj(["other/x"]), "ours/cleanup");
    expect(patches).toEqual([
      { metadata: { finalizers: ["other/x", "ours/cleanup"], resourceVersion: "42" } },
    ]);
    expect(hasFinalizer(updated, "ours/cleanup")).toBe(true);
  });

  it("removes only its own, with the resourceVersion it read", async () => {
    const { client, patches } = fakeClient();
    await removeFinalizer(client, obj(["other/x", "ours/cleanup"], true), "ours/cleanup");
    expect(patches).toEqual([{ metadata: { finalizers: ["other/x"], resourceVersion: "42" } }]);
  });

  it("writes nothing when there is nothing to do", async () => {
    const { client, patches } = fakeClient();
    await addFinalizer(client, obj(["ours/cleanup"]), "ours/cleanup");
    await removeFinalizer(client, obj([]), "ours/cleanup");
    expect(patches).toEqual([]);
  });

  it("tells a deleting object", () => {
    expect(isDeleting(obj([], true))).toBe(true);
    expect(isDeleting(obj([]))).toBe(false);
  });
});
