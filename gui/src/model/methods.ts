/** Region types and the methods a plan step may call on each (mirrors regions_cli/workflow/model.py). */

export const REGION_TYPES = [
  'Region',
  'FeedForwardRegion',
  'RAGRegion',
  'BroadcastRegion',
  'ListenerRegion',
  'RouterRegion',
  'WorkflowRegion',
] as const;

export type RegionType = (typeof REGION_TYPES)[number];

const COMMON = ['clear_replies', 'keep_last_reply_per_source'];
const LLM = ['make_questions', 'make_replies', 'summarize_replies', ...COMMON];

export const METHODS: Record<RegionType, readonly string[]> = {
  Region: LLM,
  FeedForwardRegion: LLM,
  RAGRegion: ['make_replies', 'make_updates', 'request_summaries', ...COMMON],
  BroadcastRegion: ['broadcast', ...COMMON],
  ListenerRegion: ['start', 'stop', ...COMMON],
  RouterRegion: ['make_replies', ...COMMON],
  WorkflowRegion: ['make_replies', ...COMMON],
};

export const LLM_REGION_TYPES: ReadonlySet<string> = new Set(['Region', 'FeedForwardRegion']);

/** Types that take an `llm:` (a router's is optional: it chooses when no rule matches). */
export const LLM_CHOOSING_TYPES: ReadonlySet<string> = new Set([...LLM_REGION_TYPES, 'RouterRegion']);

/** Types whose replies may be typed by an `output_schema:`. */
export const OUTPUT_SCHEMA_TYPES: ReadonlySet<string> = LLM_REGION_TYPES;

/** Types that receive requests, so may check them with an `input_schema:`. */
export const INPUT_SCHEMA_TYPES: ReadonlySet<string> = new Set(['Region', 'FeedForwardRegion', 'RAGRegion', 'BroadcastRegion', 'RouterRegion', 'WorkflowRegion']);

/** Region types that must have a `task`. */
export const TASK_REQUIRED: ReadonlySet<string> = new Set(['Region', 'FeedForwardRegion', 'RAGRegion']);

/** Keys that only apply to some types; dropped when a region changes to a type without them. */
export const TYPE_ONLY_KEYS: Record<string, ReadonlySet<string>> = {
  llm: LLM_CHOOSING_TYPES,
  prompts: LLM_REGION_TYPES,
  output_schema: OUTPUT_SCHEMA_TYPES,
  input_schema: INPUT_SCHEMA_TYPES,
  routes: new Set(['RouterRegion']),
  default: new Set(['RouterRegion']),
  workflow: new Set(['WorkflowRegion']),
  entry: new Set(['WorkflowRegion']),
  rag: new Set(['RAGRegion']),
  threshold: new Set(['RAGRegion']),
  reply_with_actors: new Set(['RAGRegion']),
  max_results: new Set(['RAGRegion']),
  sink: new Set(['ListenerRegion']),
  taps: new Set(['ListenerRegion']),
};

export function methodsOf(type: string | undefined): readonly string[] {
  return (type && METHODS[type as RegionType]) || [];
}

export function isRegionType(value: unknown): value is RegionType {
  return typeof value === 'string' && (REGION_TYPES as readonly string[]).includes(value);
}

/** Colour and label per type, used by nodes, chips and the legend (icons: TypeIcon). */
export const TYPE_STYLE: Record<RegionType, { color: string; label: string }> = {
  Region: { color: '#4f7cff', label: 'Region' },
  FeedForwardRegion: { color: '#00a3a3', label: 'Feed-forward' },
  RAGRegion: { color: '#c2410c', label: 'RAG' },
  BroadcastRegion: { color: '#9333ea', label: 'Broadcast' },
  ListenerRegion: { color: '#6b7280', label: 'Listener' },
  RouterRegion: { color: '#ca8a04', label: 'Router' },
  WorkflowRegion: { color: '#be185d', label: 'Sub-workflow' },
};

export function typeStyle(type: unknown): { color: string; label: string } {
  return isRegionType(type) ? TYPE_STYLE[type] : { color: '#b91c1c', label: String(type ?? '?') };
}
