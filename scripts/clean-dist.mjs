// Removes dist/ so a build never ships files from an older layout.
import { rmSync } from "node:fs";

rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
