/**
 * What the relay adds to the core's delivery reports (`buildDeliveryReport` in
 * @mailgate/core): the enhanced status code of a next hop's reply.
 */

/** Enhanced status code from a reply ("550 5.1.1 ..."), or one derived from its class. */
export function enhancedStatus(text: string, fallbackClass: 4 | 5): string {
  const m = /^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(text);
  if (m) return `${fallbackClass}.${m[2]}.${m[3]}`;
  return `${fallbackClass}.0.0`;
}
