# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The dashboard's WSGI application: Horizon's own, with its static files
served by WhiteNoise from the directory ``up`` collected them into.

Horizon leaves static files to a front web server (Apache in DevStack).
The all-in-one cloud has none, and gunicorn serves no files, so WhiteNoise
answers ``STATIC_URL`` in the same process: with the right content types,
conditional requests and cache headers, and never outside ``STATIC_ROOT``.
"""

from __future__ import annotations

from django.conf import settings
from openstack_dashboard.wsgi import application as horizon
from whitenoise import WhiteNoise

application = WhiteNoise(horizon, root=settings.STATIC_ROOT, prefix=settings.STATIC_URL)
