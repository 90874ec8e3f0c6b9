"""The sandbox store's catalog: products, variants, options, modifiers and per-location stock."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .formats import cents, iso8601, v3_money

COLORS = ("RED", "BLUE", "GREEN", "BLACK")
SIZES = ("S", "M", "L", "XL")
NOUNS = ("T-Shirt", "Hoodie", "Mug", "Poster", "Cap", "Tote Bag", "Notebook", "Sticker Pack",
         "Water Bottle", "Socks", "Scarf", "Backpack")
ADJECTIVES = ("Classic", "Organic", "Vintage", "Deluxe", "Everyday", "Limited")
LOCATIONS = (
    {"location_id": 1, "location_code": "BC-LOCATION-1", "location_name": "Default location"},
    {"location_id": 2, "location_code": "WAREHOUSE-2", "location_name": "Overflow warehouse"},
)


@dataclass
class OptionValue:
    id: int
    option_id: int
    option_name: str  # "Color"
    label: str  # "Red"
    code: str  # "RED", used in variant SKUs


@dataclass
class Modifier:
    """A non-variant option (text field or checkbox). It changes the price, never the SKU."""

    id: int  # product option id
    option_id: int
    name: str
    type: str  # "Text field" | "Checkbox"
    price_adjustment: Decimal


@dataclass
class Variant:
    id: int
    product_id: int
    sku: str
    sku_id: int | None  # None for a product's base variant
    option_values: list[OptionValue]
    price: Decimal | None  # None = inherits the product price
    cost_price: Decimal | None


@dataclass
class Product:
    id: int
    name: str
    sku: str
    price: Decimal
    cost_price: Decimal
    tracking: str  # "product" | "variant"
    variants: list[Variant] = field(default_factory=list)
    modifiers: list[Modifier] = field(default_factory=list)
    weight: Decimal = Decimal("1")
    date_created: datetime | None = None
    date_modified: datetime | None = None

    @property
    def has_options(self) -> bool:
        return bool(self.variants and self.variants[0].option_values)


class Catalog:
    def __init__(self):
        self.products: dict[int, Product] = {}
        self.variants: dict[int, Variant] = {}
        # (variant_id, location_id) -> on hand
        self.stock: dict[tuple[int, int], int] = {}

    # -- look-ups ----------------------------------------------------------------------------
    def variant_by_sku(self, sku: str) -> Variant | None:
        return next((v for v in self.variants.values() if v.sku == sku), None)

    def unit_price(self, variant: Variant) -> Decimal:
        return variant.price if variant.price is not None else self.products[variant.product_id].price

    def level(self, variant_id: int, location_id: int = 1) -> int:
        return self.stock.get((variant_id, location_id), 0)

    def product_level(self, product: Product, location_id: int = 1) -> int:
        return sum(self.level(v.id, location_id) for v in product.variants)

    # -- v3 representations -------------------------------------------------------------------
    def product_json(self, product: Product, include_variants: bool = False) -> dict:
        base_variant = product.variants[0]
        body = {
            "id": product.id,
            "name": product.name,
            "type": "physical",
            "sku": product.sku,
            "description": f"<p>{product.name}</p>",
            "weight": float(product.weight),
            "width": 0, "depth": 0, "height": 0,
            "price": v3_money(product.price),
            "cost_price": v3_money(product.cost_price),
            "retail_price": 0, "sale_price": 0, "map_price": 0,
            "tax_class_id": 0,
            "product_tax_code": "",
            "calculated_price": v3_money(product.price),
            "categories": [23],
            "brand_id": 0,
            "inventory_level": self.product_level(product),
            "inventory_warning_level": 5,
            "inventory_tracking": product.tracking,
            "base_variant_id": None if product.has_options else base_variant.id,
            "is_visible": True,
            "availability": "available",
            "condition": "New",
            "custom_url": {"url": f"/{product.sku.lower()}/", "is_customized": False},
            "date_created": iso8601(product.date_created),
            "date_modified": iso8601(product.date_modified),
        }
        if include_variants:
            body["variants"] = [self.variant_json(v) for v in product.variants]
        return body

    def variant_json(self, variant: Variant) -> dict:
        product = self.products[variant.product_id]
        price = self.unit_price(variant)
        return {
            "id": variant.id,
            "product_id": variant.product_id,
            "sku": variant.sku,
            "sku_id": variant.sku_id,
            "price": v3_money(variant.price) if variant.price is not None else None,
            "calculated_price": v3_money(price),
            "sale_price": None,
            "retail_price": None,
            "map_price": None,
            "weight": None,
            "calculated_weight": float(product.weight),
            "width": None, "height": None, "depth": None,
            "is_free_shipping": False,
            "fixed_cost_shipping_price": None,
            "purchasing_disabled": False,
            "purchasing_disabled_message": "",
            "image_url": "",
            "cost_price": v3_money(variant.cost_price) if variant.cost_price is not None else None,
            "upc": "",
            "mpn": "",
            "gtin": "",
            "inventory_level": self.level(variant.id),
            "inventory_warning_level": 5,
            "bin_picking_number": "",
            "option_values": [
                {"id": ov.id, "label": ov.label, "option_id": ov.option_id,
                 "option_display_name": ov.option_name}
                for ov in variant.option_values
            ],
        }

    def inventory_item_json(self, variant: Variant) -> dict:
        locations = []
        for loc in LOCATIONS:
            level = self.level(variant.id, loc["location_id"])
            locations.append({
                **loc,
                "available_to_sell": level,
                "total_inventory_onhand": level,
                "location_enabled": True,
                "settings": {"safety_stock": 0, "is_in_stock": level > 0, "warning_level": 5,
                             "bin_picking_number": ""},
            })
        return {
            "identity": {"sku": variant.sku, "variant_id": variant.id, "product_id": variant.product_id,
                         "sku_id": variant.sku_id},
            "locations": locations,
        }


def seed_catalog(rng: random.Random, anchor: datetime, n_products: int = 20) -> Catalog:
    """Deterministic catalog: a third simple products, the rest with Color (and Size) variants; some
    simple products carry modifiers (a text field, a priced checkbox)."""
    from datetime import timedelta

    catalog = Catalog()
    variant_id = 1000
    sku_id = 500
    option_value_id = 70
    for i in range(1, n_products + 1):
        product_id = 100 + i
        name = f"{ADJECTIVES[i % len(ADJECTIVES)]} {NOUNS[i % len(NOUNS)]}"
        price = cents(Decimal(rng.randint(5, 120)) + Decimal("0.99") * (i % 2) + Decimal("0.50") * (i % 3 == 0))
        created = anchor - timedelta(days=400 - i)
        product = Product(
            id=product_id, name=name, sku=f"SKU-{i:04d}", price=price,
            cost_price=cents(price * Decimal("0.45")),
            tracking="variant" if i % 3 else "product",
            weight=Decimal(rng.randint(1, 5)),
            date_created=created, date_modified=created,
        )
        if product.tracking == "product":
            variant_id += 1
            product.variants.append(Variant(variant_id, product_id, product.sku, None, [], None, None))
            if i % 2 == 0:
                product.modifiers.append(Modifier(300 + i, 200 + i, "Gift message", "Text field", Decimal("0")))
            else:
                product.modifiers.append(Modifier(300 + i, 200 + i, "Engraving", "Checkbox", Decimal("5.00")))
        else:
            colors = rng.sample(COLORS, 3 if i % 2 else 2)
            sizes = ("S", "M", "L") if i % 2 == 0 else (None,)
            color_values = {}
            for c in colors:
                option_value_id += 1
                color_values[c] = OptionValue(option_value_id, 200 + i, "Color", c.title(), c)
            size_values = {}
            for s in sizes:
                if s is None:
                    continue
                option_value_id += 1
                size_values[s] = OptionValue(option_value_id, 400 + i, "Size", s, s)
            for c in colors:
                for s in sizes:
                    variant_id += 1
                    sku_id += 1
                    values = [color_values[c]] + ([size_values[s]] if s else [])
                    sku = f"{product.sku}-{c}" + (f"-{s}" if s else "")
                    # XL-style upcharges live on the variant; the rest inherit the product price.
                    vprice = cents(price + 2) if s == "L" else None
                    product.variants.append(Variant(variant_id, product_id, sku, sku_id, values, vprice, None))
        catalog.products[product_id] = product
        for v in product.variants:
            catalog.variants[v.id] = v
            catalog.stock[(v.id, 1)] = rng.randint(0, 80)
            catalog.stock[(v.id, 2)] = rng.randint(0, 15)
    return catalog
