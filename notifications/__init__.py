"""Notifications: French letters rendered from Jinja2 templates, and their delivery.

* ``notifications.rendering``: ``render(kind, context) -> RenderedMessage``, ``KINDS``,
  ``template_hash(kind)``, the French formatting filters;
* ``notifications.email``: ``OutgoingEmail``, ``build_mime``, ``DeliveryError``;
* ``notifications.smtp``: ``SmtpSender`` (smtplib);
* ``notifications.fake``: ``InMemorySender`` (tests, scenarios).

Nothing is imported here, so that importing one of them does not pull in the others.
"""
