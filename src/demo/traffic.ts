// The demo's synthetic traffic: who calls which provider with what, as a table, and a driver that sends it
// through the gateway with real HTTP requests at a steady, laptop-friendly rate.

import { createHash, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { FAIL_HEADER } from './provider';

interface Persona {
  subject: string;
  /** Signed JWT claims; absent for callers known only by their API key or address. */
  claims?: { groups: string[]; tenant: string; app: string; jurisdiction: string };
  /** The provider key the caller sends; one is mapped to a service in identity.api_keys. */
  apiKey: string;
}

const BILLING_KEY = 'sk-demo-billing-service';
export const BILLING_FINGERPRINT = createHash('sha256').update(BILLING_KEY).digest('hex');

const PERSONAS: Record<string, Persona> = {
  alice: { subject: 'alice', claims: { groups: ['support'], tenant: 'acme', app: 'helpdesk', jurisdiction: 'EU' }, apiKey: 'sk-demo-helpdesk' },
  sam: { subject: 'sam', claims: { groups: ['support'], tenant: 'acme', app: 'helpdesk', jurisdiction: 'US' }, apiKey: 'sk-demo-helpdesk' },
  bob: { subject: 'bob', claims: { groups: ['engineering'], tenant: 'acme', app: 'ide', jurisdiction: 'US' }, apiKey: 'sk-demo-ide' },
  carol: { subject: 'carol', claims: { groups: ['engineering'], tenant: 'acme', app: 'ide', jurisdiction: 'EU' }, apiKey: 'sk-demo-ide' },
  dave: { subject: 'dave', claims: { groups: ['marketing'], tenant: 'acme', app: 'browser', jurisdiction: 'EU' }, apiKey: 'sk-demo-personal' },
  billing: { subject: 'billing-service', apiKey: BILLING_KEY },
  script: { subject: 'anonymous', apiKey: 'sk-demo-unknown' },
};

type Provider = 'openai' | 'anthropic' | 'deepseek' | 'groq';

export interface Scenario {
  /** What it shows, printed when the demo starts. */
  about: string;
  /** Requests per deck of 100. */
  weight: number;
  personas: string[];
  providers: Provider[];
  /** Share of requests that stream. */
  stream: number;
  /** Tool offered to the model (which then calls it) on every `toolEvery`th request. */
  tool?: { name: string; every: number };
  prompts: string[];
}

const SUPPORT_PROMPTS = [
  'Summarise ticket 48213: the customer cannot log in after the password reset.',
  'Customer jane.doe@acme-corp.com called from +44 20 7946 0958 about order 1234, draft a reply.',
  'Write a polite answer explaining our refund policy for damaged items.',
  'The caller gave SSN 536-22-8845 to verify the account; what do I check next?',
  'Translate this reply into German: your parcel left our warehouse today.',
  'Patient Marc Dubois, born 12/03/1984, asks to move his appointment; draft the confirmation.',
];

const CODE_PROMPTS = [
  'Why does this TypeScript generic not narrow inside the switch statement?',
  'Write a SQL query for the ten customers with the most orders last month.',
  'Review this function for race conditions: async function flush() { await Promise.all(q.map(send)) }',
  'Our deploy fails with AccessDenied, config has aws_access_key_id = AKIAQ3EGUS2Z4KXGJHWB, why?',
  'Explain the difference between a mutex and a semaphore with a Go example.',
  'Connection string postgres://admin:S3cr3tPassw0rd@db.internal:5432/prod times out, ideas?',
  'Generate unit tests for a function that parses ISO 8601 durations.',
  'Is 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 still valid for the CI pipeline?',
  'Suggest a name for a function that merges two sorted lists.',
  'How do I profile memory growth in a Node.js service?',
  'Refactor this loop into a map/filter chain: for (const x of xs) if (x.ok) out.push(x.id)',
];

const FINANCE_PROMPTS = [
  'Classify this invoice line: cloud hosting, November, 1,240 EUR.',
  'Refund to IBAN DE89 3704 0044 0532 0130 00, reference INV-2231; write the payment note.',
  'Summarise the payment failures of the last batch run.',
  'Card 5425233430109903 was declined twice, draft the customer notice.',
];

const SHADOW_PROMPTS = [
  'Write five taglines for our winter campaign.',
  'Rewrite this press release to sound more exciting.',
  'Summarise the attached competitor pricing page.',
];

export const SCENARIOS: Scenario[] = [
  { about: 'support-bot: agents answer customers with Claude; tickets carry PII; lookup_order tool calls', weight: 32, personas: ['alice', 'sam'], providers: ['anthropic'], stream: 0.5, tool: { name: 'lookup_order', every: 3 }, prompts: SUPPORT_PROMPTS },
  { about: 'internal-copilot: engineers ask GPT about code; pasted secrets are blocked; run_tests tool calls', weight: 34, personas: ['bob', 'carol'], providers: ['openai'], stream: 0.6, tool: { name: 'run_tests', every: 4 }, prompts: CODE_PROMPTS },
  { about: 'default route: billing-service, known by its API key fingerprint, sends bank and card data', weight: 22, personas: ['billing'], providers: ['openai'], stream: 0, prompts: FINANCE_PROMPTS },
  { about: 'shadow AI: marketing and an unknown script try DeepSeek and Groq (unsanctioned: blocked)', weight: 8, personas: ['dave', 'script'], providers: ['deepseek', 'groq'], stream: 0.3, prompts: SHADOW_PROMPTS },
  { about: 'outside a route: a support agent tries GPT, which support-bot does not allow (blocked)', weight: 4, personas: ['alice'], providers: ['openai'], stream: 0, prompts: SUPPORT_PROMPTS },
];

/** Every 20th request the provider answers 500 or 503, every 33rd 429: outages and rate limits. */
const FAIL_EVERY = 20;
const RATE_LIMIT_EVERY = 33;

const PATHS: Record<Provider, { path: string; format: 'openai' | 'anthropic'; model: string }> = {
  openai: { path: '/openai/v1/chat/completions', format: 'openai', model: 'gpt-4o-mini' },
  anthropic: { path: '/anthropic/v1/messages', format: 'anthropic', model: 'claude-3-5-haiku-latest' },
  deepseek: { path: '/deepseek/v1/chat/completions', format: 'openai', model: 'deepseek-chat' },
  groq: { path: '/groq/openai/v1/chat/completions', format: 'openai', model: 'llama-3.3-70b-versatile' },
};

export interface TrafficStats {
  sent: number;
  ok: number;
  /** Answered by Sluice's policy (403, or 401 for a refused identity). */
  blocked: number;
  /** Provider errors relayed (429, 5xx) and requests that failed outright. */
  failed: number;
  streamed: number;
  toolOffers: number;
}

export interface IdentityIssuer {
  key: KeyObject;
  issuer: string;
  audience: string;
}

/** A small seeded generator: the same run of scenarios every time, so a demo (and its test) is repeatable. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class TrafficDriver {
  readonly stats: TrafficStats = { sent: 0, ok: 0, blocked: 0, failed: 0, streamed: 0, toolOffers: 0 };
  private readonly random = mulberry32(7);
  private readonly tokens = new Map<string, { token: string; renewAt: number }>();
  private readonly inFlight = new Set<Promise<void>>();
  private deck: Scenario[] = [];
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly turns = new Map<Scenario, number>();

  constructor(
    private readonly gatewayUrl: string,
    private readonly idp: IdentityIssuer,
    private readonly opts: { rate: number; maxInFlight: number },
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops sending and waits for the requests under way. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.all(this.inFlight);
  }

  private async run(): Promise<void> {
    const gap = 1000 / this.opts.rate;
    let next = Date.now();
    while (this.running) {
      if (this.inFlight.size < this.opts.maxInFlight) {
        const p = this.send().catch(() => {
          this.stats.failed++;
        });
        this.inFlight.add(p);
        void p.finally(() => this.inFlight.delete(p));
      }
      next += gap;
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
  }

  /** Scenarios in proportion to their weights, shuffled per deck of 100. */
  private nextScenario(): Scenario {
    if (this.deck.length === 0) {
      for (const s of SCENARIOS) for (let i = 0; i < s.weight; i++) this.deck.push(s);
      for (let i = this.deck.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [this.deck[i], this.deck[j]] = [this.deck[j]!, this.deck[i]!];
      }
    }
    return this.deck.pop()!;
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)]!;
  }

  private async identityToken(p: Persona): Promise<string | null> {
    if (!p.claims) return null;
    const cached = this.tokens.get(p.subject);
    if (cached && cached.renewAt > Date.now()) return cached.token;
    const token = await new SignJWT({ ...p.claims })
      .setProtectedHeader({ alg: 'EdDSA' })
      .setSubject(p.subject)
      .setIssuer(this.idp.issuer)
      .setAudience(this.idp.audience)
      .setIssuedAt()
      .setExpirationTime('2h')
      .sign(this.idp.key);
    this.tokens.set(p.subject, { token, renewAt: Date.now() + 3_600_000 });
    return token;
  }

  private async send(): Promise<void> {
    const s = this.nextScenario();
    const turn = (this.turns.get(s) ?? 0) + 1;
    this.turns.set(s, turn);
    const n = ++this.stats.sent;
    const persona = PERSONAS[this.pick(s.personas)]!;
    const target = PATHS[this.pick(s.providers)];
    const stream = this.random() < s.stream;
    const tool = s.tool && turn % s.tool.every === 0 ? s.tool.name : null;
    const prompt = this.pick(s.prompts);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const token = await this.identityToken(persona);
    if (token) headers['x-sluice-identity'] = token;
    if (n % FAIL_EVERY === 0) headers[FAIL_HEADER] = n % (FAIL_EVERY * 2) === 0 ? '503' : '500';
    else if (n % RATE_LIMIT_EVERY === 0) headers[FAIL_HEADER] = '429';
    let body: Record<string, unknown>;
    if (target.format === 'anthropic') {
      headers['x-api-key'] = persona.apiKey;
      headers['anthropic-version'] = '2023-06-01';
      body = { model: target.model, max_tokens: 512, stream, messages: [{ role: 'user', content: prompt }] };
      if (tool) body.tools = [{ name: tool, description: 'Looks up an order by its number', input_schema: { type: 'object', properties: { query: { type: 'string' } } } }];
    } else {
      headers.authorization = `Bearer ${persona.apiKey}`;
      body = { model: target.model, stream, messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: prompt }] };
      if (stream) body.stream_options = { include_usage: true };
      if (tool) body.tools = [{ type: 'function', function: { name: tool, description: 'Runs the test suite', parameters: { type: 'object', properties: { query: { type: 'string' } } } } }];
    }
    if (stream) this.stats.streamed++;
    if (tool) this.stats.toolOffers++;
    const res = await fetch(`${this.gatewayUrl}${target.path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    await res.arrayBuffer();
    if (res.ok) this.stats.ok++;
    else if (res.headers.has('x-sluice-error') && (res.status === 403 || res.status === 401)) this.stats.blocked++;
    else this.stats.failed++;
  }
}
