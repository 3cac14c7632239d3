#!/usr/bin/env node
// Copies browser dependencies (hls.js) into public/vendor so the Worker's static assets serve them.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'public', 'vendor'), { recursive: true });
copyFileSync(join(root, 'node_modules', 'hls.js', 'dist', 'hls.min.js'), join(root, 'public', 'vendor', 'hls.min.js'));
