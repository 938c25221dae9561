"""Being audio plugin: ARTalk (SIGGRAPH Asia 2025), speech to FLAME motion with the published weights."""
