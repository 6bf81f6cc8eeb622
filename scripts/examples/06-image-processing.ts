/**
 * The seed's image processing: a few generated JPEG images resized to 200×200 on the process
 * pool with jimp, and saved as `processed_*` next to the originals in a temporary folder
 * (kept, so you can look at them; the path is printed).
 *
 *   npx tsx scripts/examples/06-image-processing.ts
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ExampleContext, finishedIn, isMain, perfCounter, runStandalone, section } from './kit.ts';
import { type ImageFile, makeTestImage, processImage } from './image-tasks.ts';

export async function run({ pool, scale }: ExampleContext): Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), 'wsfutures-images-'));
  const width = Math.max(64, Math.round(1600 * Math.sqrt(scale)));
  const height = Math.round((width * 3) / 4);
  const imagePaths = ['image1.jpg', 'image2.jpg', 'image3.jpg', 'image4.jpg'];

  section(`Making ${imagePaths.length} test images of ${width}×${height} in ${folder}`);
  for await (const made of pool.starmap(makeTestImage, imagePaths.map((name, i) => [name, width, height, i + 1] as [string, number, number, number]))) {
    writeFileSync(join(folder, made.name), made.bytes);
  }

  section('Resizing them on the process pool');
  const start = perfCounter();
  // Files are read here and their bytes sent: a worker node on another machine cannot open
  // this machine's temporary folder.
  const images: ImageFile[] = imagePaths.map((name) => ({ name, bytes: readFileSync(join(folder, name)) }));
  for await (const result of pool.map(processImage, images)) {
    if (result) writeFileSync(join(folder, result.name), result.bytes);
    console.log(`Image Processing Result: ${result !== false}${result ? ` (wrote ${join(folder, result.name)})` : ''}`);
  }
  finishedIn(start);
}

if (isMain(import.meta)) await runStandalone(run);
