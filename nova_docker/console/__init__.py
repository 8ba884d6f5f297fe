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

"""Interactive serial consoles: a TCP port on the management address that
``nova-serialproxy`` connects to, and behind it a shell in the container.

:mod:`.relay` moves bytes between sockets in one thread for every console of
the host; :mod:`.serial` is what the driver calls: it checks the instance,
takes a port from Nova and opens an engine exec for each connection.
"""
