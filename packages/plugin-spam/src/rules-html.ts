/**
 * What a reader sees of an HTML body, for EMPTY_MESSAGE and HTML_IMAGE_ONLY_*: whether
 * any text outside tags, comments, <script> and <style> is visible, and whether there
 * are images. A single forward scan (no regular expression that could backtrack over
 * hostile markup), over at most MAX_RULE_TEXT characters.
 */
import { MAX_RULE_TEXT } from './rules-context.js';

export interface HtmlStats {
  /** Some of that text is not whitespace (nor &nbsp;). */
  visible: boolean;
  /** <img> tags. */
  images: number;
}

/** Elements whose content is not shown. */
const HIDDEN = ['script', 'style', 'title', 'head'];

export function htmlStats(html: string): HtmlStats {
  const src = html.length > MAX_RULE_TEXT ? html.slice(0, MAX_RULE_TEXT) : html;
  const lower = src.toLowerCase();
  let visible = false;
  let images = 0;
  let i = 0;
  while (i < src.length) {
    const c = src.charCodeAt(i);
    if (c === 0x3c /* < */) {
      if (lower.startsWith('<!--', i)) {
        const end = lower.indexOf('-->', i + 4);
        i = end < 0 ? src.length : end + 3;
        continue;
      }
      const m = /^<\/?([a-z][a-z0-9]*)/.exec(lower.slice(i, i + 12));
      if (!m) {
        // a lone '<' is text
        i++;
        continue;
      }
      const tag = m[1]!;
      const close = lower.indexOf('>', i);
      const tagEnd = close < 0 ? src.length : close + 1;
      if (tag === 'img' && !lower.startsWith('</', i)) images++;
      if (HIDDEN.includes(tag) && !lower.startsWith('</', i)) {
        const end = lower.indexOf(`</${tag}`, tagEnd);
        i = end < 0 ? src.length : end;
        continue;
      }
      i = tagEnd;
      continue;
    }
    if (c === 0x26 /* & */) {
      const m = /^&(?:#\d{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});/.exec(lower.slice(i, i + 40));
      if (m) {
        // &nbsp; and numeric spaces are whitespace to a reader
        if (!/^&(?:nbsp|#160|#xa0|#32|#x20|#9|#10|#13);$/.test(m[0])) visible = true;
        i += m[0].length;
        continue;
      }
    }
    if (!(c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c || c === 0xa0)) visible = true;
    i++;
  }
  return { visible, images };
}
