// The console's charts and editors turn minor units into major ones by the currency's own
// exponent, not by 100.
import { it } from "node:test";
import assert from "node:assert/strict";
import { major, minorDigits } from "../src/money.js";

it("uses each currency's minor-unit exponent", () => {
  assert.deepEqual(["JPY", "USD", "EUR", "KWD", "BHD"].map(minorDigits), [0, 2, 2, 3, 3]);
  assert.equal(major(1500, "JPY"), 1500);
  assert.equal(major(1500, "USD"), 15);
  assert.equal(major(1500, "KWD"), 1.5);
});
