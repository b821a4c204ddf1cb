/** @mailgate/plugin-spam — the whole public API. */
export {};
