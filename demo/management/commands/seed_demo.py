"""`manage.py seed_demo --store-url URL`: create or refresh the demo tenant, connections,
integration, mappings and agent (idempotent), and print the agent's fresh key once."""

from pathlib import Path

from django.core.management.base import BaseCommand

from demo.seed import default_company_path, init_company, sandbox_skus, seed_demo


class Command(BaseCommand):
    help = "Seed the demo (Demo Shop → simulated Sage 50) idempotently."

    def add_arguments(self, parser):
        parser.add_argument("--store-url", default="http://127.0.0.1:8701",
                            help="base URL of the running sandbox store")
        parser.add_argument("--company", default=None, help="simulated Sage company file")
        parser.add_argument("--same-code-fallback", action="store_true",
                            help="no item mappings: use each SKU as the Sage stock code")

    def handle(self, *args, store_url, company, same_code_fallback, **options):
        skus = sandbox_skus()
        seed = seed_demo(store_url=store_url, company_path=Path(company) if company else default_company_path(),
                         skus=skus, same_code_fallback=same_code_fallback, map_items=not same_code_fallback)
        init_company(seed.company_path, skus)
        self.stdout.write(f"Integration #{seed.integration.pk} '{seed.integration}' ready; Sage company "
                          f"{seed.company_path}.")
        self.stdout.write(f"Agent key (shown once; pass it as ML_AGENT_KEY): {seed.agent_key}")
