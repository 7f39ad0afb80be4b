"""The use cases, over the ports: voicemail, conversation, PIN prompts, the recorder's streams,
and the jobs, documents and deliveries they share. Imports core and config; never an adapter,
the runtime or an SDK."""
