/**
 * Image tasks for 06-image-processing.ts, with jimp (pure JavaScript, so it runs in worker
 * threads under Node and Deno alike, with no native build). Images travel as PNG bytes rather
 * than file paths: a worker node on another machine cannot open the coordinator's files.
 */
import { Jimp } from 'jimp';

/** An image on the wire: a file name and its encoded bytes (JPEG here). */
export interface ImageFile {
  name: string;
  bytes: Uint8Array;
}

/** Makes a `width`×`height` JPEG test card (gradient and stripes) that varies with `seed`. */
export async function makeTestImage(name: string, width: number, height: number, seed: number): Promise<ImageFile> {
  const image = new Jimp({ width, height, color: 0x000000ff });
  const data = image.bitmap.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const stripe = ((x + y + seed * 17) >> 5) % 2 === 0;
      data[i] = Math.floor((x * 255) / width + seed * 40) & 255;
      data[i + 1] = Math.floor((y * 255) / height) & 255;
      data[i + 2] = stripe ? 220 : (seed * 60) & 255;
      data[i + 3] = 255;
    }
  }
  return { name, bytes: await image.getBuffer('image/jpeg') };
}

/**
 * The seed's `process_image`: open, resize to 200×200, and hand back `processed_<name>` for
 * the caller to save; `false` after printing the error, as the seed returns False.
 */
export async function processImage(image: ImageFile): Promise<ImageFile | false> {
  try {
    const img = await Jimp.fromBuffer(toBuffer(image.bytes));
    img.resize({ w: 200, h: 200 });
    const bytes = await img.getBuffer('image/jpeg');
    console.log(`Processed ${image.name}`);
    return { name: `processed_${image.name}`, bytes };
  } catch (e) {
    console.log(`Error processing ${image.name}: ${(e as Error).message}`);
    return false;
  }
}

/** jimp reads Buffers (and ArrayBuffers); a decoded Uint8Array may be neither. */
function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Does nothing: running it makes a worker thread load this module (and jimp) ahead of time. */
export function loadImageLibrary(): boolean {
  return typeof Jimp === 'function';
}
