"""Create an admin login if there is none, and print how to log in.

The generated password is kept in data/admin-login.txt (git-ignored, mode 600) so `make run`
can print it again on the next start; change it in admin and delete the file in production.
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first admin login (if none exists) and print it."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default=f"{settings.PUBLIC_BASE_URL}/admin/")

    def handle(self, *args, username, url, **options):
        User = get_user_model()
        login_file = settings.DATA_DIR / "admin-login.txt"
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            login_file.write_text(f"{username}\n{password}\n")
            login_file.chmod(0o600)
        if login_file.exists():
            user, password = login_file.read_text().split("\n")[:2]
            self.stdout.write(f"Admin: {url}  login: {user}  password: {password}")
        else:
            self.stdout.write(f"Admin: {url}  (log in with your existing superuser)")
