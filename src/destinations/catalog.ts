// The known AI destinations, as data: host pattern → provider, wire format, gateway prefix, jurisdiction.
// Adding a provider is adding a row; registry.ts turns rows into lookups.

import type { Format } from '../providers/types';

export interface CatalogEntry {
  provider: string;
  /** Exact host, or a template with one `{region}` or `{resource}` label. */
  host: string;
  format: Format;
  /** Gateway path prefix; a templated host takes its label from the next path segment. */
  prefix?: string;
  /** Fixed jurisdiction; templated hosts derive it from the region instead. */
  jurisdiction?: string;
  /** `major` providers are the well-known platforms; `long-tail` hosts are what "shadow AI" means. */
  tier: 'major' | 'long-tail';
}

export const CATALOG: readonly CatalogEntry[] = [
  { provider: 'openai', host: 'api.openai.com', format: 'openai', prefix: 'openai', jurisdiction: 'US', tier: 'major' },
  { provider: 'anthropic', host: 'api.anthropic.com', format: 'anthropic', prefix: 'anthropic', jurisdiction: 'US', tier: 'major' },
  { provider: 'gemini', host: 'generativelanguage.googleapis.com', format: 'gemini', prefix: 'gemini', jurisdiction: 'US', tier: 'major' },
  { provider: 'bedrock', host: 'bedrock-runtime.{region}.amazonaws.com', format: 'bedrock', prefix: 'bedrock', tier: 'major' },
  { provider: 'azure-openai', host: '{resource}.openai.azure.com', format: 'openai', prefix: 'azure', tier: 'major' },
  { provider: 'vertex-ai', host: '{region}-aiplatform.googleapis.com', format: 'gemini', tier: 'major' },

  // OpenAI-compatible long tail reachable through the gateway.
  { provider: 'mistral', host: 'api.mistral.ai', format: 'openai', prefix: 'mistral', jurisdiction: 'EU', tier: 'long-tail' },
  { provider: 'groq', host: 'api.groq.com', format: 'openai', prefix: 'groq', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'together', host: 'api.together.xyz', format: 'openai', prefix: 'together', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'deepseek', host: 'api.deepseek.com', format: 'openai', prefix: 'deepseek', jurisdiction: 'CN', tier: 'long-tail' },
  { provider: 'xai', host: 'api.x.ai', format: 'openai', prefix: 'xai', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'openrouter', host: 'openrouter.ai', format: 'openai', prefix: 'openrouter', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'fireworks', host: 'api.fireworks.ai', format: 'openai', prefix: 'fireworks', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'perplexity', host: 'api.perplexity.ai', format: 'openai', prefix: 'perplexity', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'cohere', host: 'api.cohere.com', format: 'openai', prefix: 'cohere', jurisdiction: 'CA', tier: 'long-tail' },
  { provider: 'cerebras', host: 'api.cerebras.ai', format: 'openai', prefix: 'cerebras', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'deepinfra', host: 'api.deepinfra.com', format: 'openai', prefix: 'deepinfra', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'sambanova', host: 'api.sambanova.ai', format: 'openai', prefix: 'sambanova', jurisdiction: 'US', tier: 'long-tail' },

  // Long-tail hosts seen only through the forward proxy: they mark shadow AI.
  { provider: 'cohere', host: 'api.cohere.ai', format: 'generic', jurisdiction: 'CA', tier: 'long-tail' },
  { provider: 'ai21', host: 'api.ai21.com', format: 'openai', jurisdiction: 'IL', tier: 'long-tail' },
  { provider: 'huggingface', host: 'api-inference.huggingface.co', format: 'generic', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'huggingface', host: 'router.huggingface.co', format: 'openai', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'replicate', host: 'api.replicate.com', format: 'generic', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'hyperbolic', host: 'api.hyperbolic.xyz', format: 'openai', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'novita', host: 'api.novita.ai', format: 'openai', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'nvidia', host: 'integrate.api.nvidia.com', format: 'openai', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'github-models', host: 'models.github.ai', format: 'openai', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'github-models', host: 'models.inference.ai.azure.com', format: 'openai', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'voyage', host: 'api.voyageai.com', format: 'generic', jurisdiction: 'US', tier: 'long-tail' },
  { provider: 'jina', host: 'api.jina.ai', format: 'generic', jurisdiction: 'DE', tier: 'long-tail' },
  { provider: 'moonshot', host: 'api.moonshot.cn', format: 'openai', jurisdiction: 'CN', tier: 'long-tail' },
  { provider: 'moonshot', host: 'api.moonshot.ai', format: 'openai', jurisdiction: 'CN', tier: 'long-tail' },
  { provider: 'zhipu', host: 'open.bigmodel.cn', format: 'openai', jurisdiction: 'CN', tier: 'long-tail' },
  { provider: 'qwen', host: 'dashscope.aliyuncs.com', format: 'openai', jurisdiction: 'CN', tier: 'long-tail' },
  { provider: 'qwen', host: 'dashscope-intl.aliyuncs.com', format: 'openai', jurisdiction: 'SG', tier: 'long-tail' },
  { provider: 'minimax', host: 'api.minimax.chat', format: 'openai', jurisdiction: 'CN', tier: 'long-tail' },
  { provider: 'baichuan', host: 'api.baichuan-ai.com', format: 'openai', jurisdiction: 'CN', tier: 'long-tail' },
  { provider: '01ai', host: 'api.lingyiwanwu.com', format: 'openai', jurisdiction: 'CN', tier: 'long-tail' },
];

/**
 * Cloud region → jurisdiction. Exact names first, then the longest matching prefix.
 * Covers AWS (`eu-central-1`), Google (`europe-west4`) and Azure (`westeurope`) naming.
 */
export const REGION_JURISDICTION: ReadonlyArray<readonly [string, string]> = [
  ['eu-west-2', 'UK'],
  ['eu-central-2', 'CH'],
  ['europe-west2', 'UK'],
  ['europe-west6', 'CH'],
  ['us-gov-', 'US'],
  ['us-', 'US'],
  ['ca-', 'CA'],
  ['eu-', 'EU'],
  ['europe-', 'EU'],
  ['ap-northeast-1', 'JP'],
  ['ap-northeast-3', 'JP'],
  ['ap-northeast-2', 'KR'],
  ['ap-south-', 'IN'],
  ['ap-southeast-1', 'SG'],
  ['ap-southeast-2', 'AU'],
  ['ap-southeast-3', 'ID'],
  ['ap-east-1', 'HK'],
  ['asia-northeast1', 'JP'],
  ['asia-south', 'IN'],
  ['asia-southeast1', 'SG'],
  ['australia-', 'AU'],
  ['northamerica-', 'CA'],
  ['sa-east-', 'BR'],
  ['southamerica-', 'BR'],
  ['me-', 'ME'],
  ['il-', 'IL'],
  ['af-', 'ZA'],
  // Azure region names
  ['westeurope', 'EU'],
  ['northeurope', 'EU'],
  ['francecentral', 'EU'],
  ['germanywestcentral', 'EU'],
  ['swedencentral', 'EU'],
  ['italynorth', 'EU'],
  ['polandcentral', 'EU'],
  ['spaincentral', 'EU'],
  ['uksouth', 'UK'],
  ['ukwest', 'UK'],
  ['switzerlandnorth', 'CH'],
  ['norwayeast', 'NO'],
  ['eastus', 'US'],
  ['westus', 'US'],
  ['centralus', 'US'],
  ['northcentralus', 'US'],
  ['southcentralus', 'US'],
  ['canada', 'CA'],
  ['japan', 'JP'],
  ['korea', 'KR'],
  ['australia', 'AU'],
  ['southindia', 'IN'],
  ['centralindia', 'IN'],
  ['brazil', 'BR'],
];
