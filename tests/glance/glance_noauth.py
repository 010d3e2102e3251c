"""Paste filter for the ims-patch test Glance: Keystone-less "authentication".

Glance 33's stock no-auth flavour (``unauthenticated-context``) builds a
context with ``roles=[]``; under the RBAC new defaults enforced by
oslo.policy 6 every call is then refused with 403.  This filter sits in
front of Glance's *stock* ``ContextMiddleware`` and makes every request look
like one that keystonemiddleware has already validated:

* ``X-Identity-Status: Confirmed`` is always set;
* ``X-Roles``, ``X-Project-Id`` and ``X-User-Id`` are filled in only when the
  client did not send them (nor their legacy ``X-Role`` / ``X-Tenant-Id`` /
  ``X-Tenant`` / ``X-User`` spellings; an empty header counts as sent), so a test can still act as a plain member
  (``X-Roles: reader,member``) or as a member of another project
  (``X-Project-Id: other``).

Any ``X-Auth-Token`` (or none) is accepted.  Glance's real policies apply.
"""

DEFAULTS = {
    'roles': 'admin,member,reader',
    'project_id': '0123456789abcdef0123456789abcdef',
    'user_id': 'fedcba9876543210fedcba9876543210',
}


def _sent(environ, *keys):
    """True when the client sent any of these headers (even empty)."""
    return any(k in environ for k in keys)


class NoAuthHeaders(object):
    def __init__(self, app, conf):
        self.app = app
        self.roles = conf.get('roles', DEFAULTS['roles'])
        self.project_id = conf.get('project_id', DEFAULTS['project_id'])
        self.user_id = conf.get('user_id', DEFAULTS['user_id'])

    def __call__(self, environ, start_response):
        environ['HTTP_X_IDENTITY_STATUS'] = 'Confirmed'
        if not _sent(environ, 'HTTP_X_ROLES', 'HTTP_X_ROLE'):
            environ['HTTP_X_ROLES'] = self.roles
        if not _sent(environ, 'HTTP_X_PROJECT_ID', 'HTTP_X_TENANT_ID',
                     'HTTP_X_TENANT'):
            environ['HTTP_X_PROJECT_ID'] = self.project_id
        if not _sent(environ, 'HTTP_X_USER_ID', 'HTTP_X_USER'):
            environ['HTTP_X_USER_ID'] = self.user_id
        return self.app(environ, start_response)

    @classmethod
    def factory(cls, global_conf, **local_conf):
        conf = dict(global_conf, **local_conf)

        def _filter(app):
            return cls(app, conf)
        return _filter
