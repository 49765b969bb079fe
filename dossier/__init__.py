"""Event-sourced case dossiers (电子卷宗): aggregates and application services."""
