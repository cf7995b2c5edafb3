// Finding categories and severities: shared by rule packs, findings and policy (no dependencies, so the config
// schema can name them without loading the detection engine).

export const CATEGORIES = ['pii', 'phi', 'financial', 'credential', 'source_code', 'prompt_injection', 'other'] as const;
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Category = (typeof CATEGORIES)[number];
export type Severity = (typeof SEVERITIES)[number];
