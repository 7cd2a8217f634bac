/** Small line icons per region type (SVG, so they render without any emoji font). */
const PATHS: Record<string, string> = {
  // speech bubble
  Region: 'M3 4h14v9H8l-4 3v-3H3z',
  // double chevron
  FeedForwardRegion: 'M3 4l6 6-6 6M10 4l6 6-6 6',
  // stacked books / database
  RAGRegion: 'M4 4c0-1.5 12-1.5 12 0v12c0 1.5-12 1.5-12 0zM4 4c0 1.5 12 1.5 12 0M4 10c0 1.5 12 1.5 12 0',
  // megaphone
  BroadcastRegion: 'M3 8v4h3l7 4V4L6 8zM15 7c1.5 1 1.5 5 0 6',
  // ear / antenna: concentric arcs
  ListenerRegion: 'M10 11a1 1 0 1 0 0-.01M6.5 13.5a5 5 0 0 1 0-7M13.5 6.5a5 5 0 0 1 0 7M4 16a8.5 8.5 0 0 1 0-12M16 4a8.5 8.5 0 0 1 0 12',
  // a fork: one way in, two ways out
  RouterRegion: 'M2 10h6M8 10l8-6M8 10l8 6M13 4h3v3M13 16h3v-3',
  // a box holding a smaller flow
  WorkflowRegion: 'M3 3h14v14H3zM6 8h3v4H6zM11 8h3v4h-3zM9 10h2',
};

export function TypeIcon({ type, size = 14 }: { type: unknown; size?: number }) {
  const path = PATHS[String(type)] ?? 'M10 3v9M10 15v2';
  return (
    <svg width={size} height={size} viewBox="0 0 20 20" fill="none" stroke="currentColor" strokeWidth={1.8} strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <path d={path} />
    </svg>
  );
}
