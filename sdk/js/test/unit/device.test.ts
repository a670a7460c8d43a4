import { beforeEach, describe, expect, it, vi } from "vitest";
import { deviceFingerprint, deviceId } from "../../src/device";
import { clearBrowserState, cookies } from "./helpers";

describe("device id", () => {
  beforeEach(clearBrowserState);

  it("is random, kept first-party, and the same on every call", () => {
    const id = deviceId();
    expect(id).toMatch(/^d_[0-9a-f]{32}$/);
    expect(deviceId()).toBe(id);
    expect(localStorage.getItem("referral_device")).toBe(id);
    expect(cookies().referral_device).toBe(id);
  });

  it("survives cleared localStorage through its cookie, and the other way round", () => {
    const id = deviceId();
    localStorage.clear();
    expect(deviceId()).toBe(id);
    document.cookie = "referral_device=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/";
    expect(deviceId()).toBe(id);
  });

  it("replaces a tampered value", () => {
    localStorage.setItem("referral_device", "<script>");
    expect(deviceId()).toMatch(/^d_[0-9a-f]{32}$/);
  });

  it("differs between browsers", () => {
    const first = deviceId();
    clearBrowserState();
    expect(deviceId()).not.toBe(first);
  });

  it("still works when storage is blocked", () => {
    vi.spyOn(Storage.prototype, "getItem").mockImplementation(() => {
      throw new DOMException("blocked", "SecurityError");
    });
    vi.spyOn(Storage.prototype, "setItem").mockImplementation(() => {
      throw new DOMException("blocked", "SecurityError");
    });
    expect(deviceId()).toMatch(/^d_[0-9a-f]{32}$/);
  });
});

describe("device fingerprint", () => {
  it("is a stable one-way hash of the coarse browser traits", () => {
    const fingerprint = deviceFingerprint();
    expect(fingerprint).toMatch(/^fp1_[0-9a-f]{28}$/);
    expect(deviceFingerprint()).toBe(fingerprint);
    expect(fingerprint).not.toContain(navigator.language);
  });

  it("changes with the language or the screen", () => {
    const before = deviceFingerprint();
    vi.spyOn(navigator, "language", "get").mockReturnValue("fa-IR");
    const persian = deviceFingerprint();
    expect(persian).not.toBe(before);
    vi.spyOn(screen, "width", "get").mockReturnValue(1234);
    expect(deviceFingerprint()).not.toBe(persian);
  });
});
