//! Rendering: dashboard, compact, full, JSON, Markdown, doctor text. No decisions in here.
