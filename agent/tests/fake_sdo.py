"""A fake Sage Data Objects engine (Sage 50 UK) built from ``surfaces/sdo.json``.

It keeps its data in plain lists and logs every field set and method call in order. What it
does the way Sage does: ``InvoicePost.Type`` must be a ledger type (``sdoLedgerInvoice`` /
``sdoLedgerCredit``), the document kind comes from the header's ``INVOICE_TYPE_CODE`` (0, a
product invoice, when it is not set), ``TransactionPost`` needs a TransType, an SDO whose major
version differs from the data's refuses the logon with ``sdoWrongVersion``, and unknown field
keys raise like COM does.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from agent.tests.surface_fakes import Strict, Surface


class ComError(Exception):
    """What pywin32 raises for a failed COM call (pywintypes.com_error)."""


class Field(Strict):
    def __init__(self, surface, owner, name, spec):
        super().__init__(surface, "Field")
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "spec", spec)

    def get_Value(self):  # noqa: N802
        return self.owner.current.get(self.name)

    def on_set(self, name, value):
        self.owner.fake.log.append((f"{self.owner.label}.{self.name}", value))
        self.owner.current[self.name] = value

    def __setattr__(self, name, value):
        if name == "Value":
            self._surface.check_value(f"{self.owner.label}.{self.name}", self.spec, value)
            enum = self.spec.get("enum")
            if enum and value not in self._surface.enum(enum).values():
                raise ComError(f"{self.owner.label}.{self.name}: {value} is not a {enum} value")
        super().__setattr__(name, value)


class Fields(Strict):
    def __init__(self, surface, owner, specs):
        super().__init__(surface, "Fields")
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "specs", specs)

    def Item(self, name):  # noqa: N802
        spec = self.specs.get(name)
        if spec is None:
            raise ComError(f"{self.owner.label}: Item not found in collection ({name!r} is not a field)")
        return Field(self._surface, self.owner, name, spec)


class Buffer(Strict):
    """A posting header or item line: fields only."""

    def __init__(self, fake, label, specs):
        super().__init__(fake.surface, "Buffer")
        object.__setattr__(self, "fake", fake)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "current", {})
        object.__setattr__(self, "specs", specs)

    def get_Fields(self):  # noqa: N802
        return Fields(self._surface, self, self.specs)


class Record(Strict):
    """A SDO record set over one of the fake's tables, with a cursor."""

    def __init__(self, fake, name, rows):
        super().__init__(fake.surface, name)
        for key, value in {"fake": fake, "label": name, "rows": rows, "pos": -1, "adding": False,
                           "current": {}}.items():
            object.__setattr__(self, key, value)

    def get_Fields(self):  # noqa: N802
        return Fields(self._surface, self, self._surface.fields(self._object))

    def Find(self, partial):  # noqa: N802
        key = self._surface.objects[self._object]["key"]
        self.fake.log.append((f"{self.label}.Find", self.current.get(key)))
        for i, row in enumerate(self.rows):
            if row[key] == self.current.get(key):
                object.__setattr__(self, "pos", i)
                object.__setattr__(self, "current", row)
                return True
        return False

    def MoveFirst(self):  # noqa: N802
        object.__setattr__(self, "pos", 0)
        if self.rows:
            object.__setattr__(self, "current", self.rows[0])
        return bool(self.rows)

    def MoveNext(self):  # noqa: N802
        object.__setattr__(self, "pos", self.pos + 1)
        if self.pos < len(self.rows):
            object.__setattr__(self, "current", self.rows[self.pos])
            return True
        return False

    def Read(self, number):  # noqa: N802
        self.fake.log.append((f"{self.label}.Read", number))
        object.__setattr__(self, "current", self.rows[number - 1])
        return True

    def get_RecordNumber(self):  # noqa: N802
        return self.rows.index(self.current) + 1

    def AddNew(self):  # noqa: N802
        self.fake.log.append((f"{self.label}.AddNew",))
        object.__setattr__(self, "current", {})
        object.__setattr__(self, "adding", True)
        return True

    def Update(self):  # noqa: N802
        self.fake.log.append((f"{self.label}.Update",))
        if self.adding:
            self.rows.append(self.current)
        return True

    def get_Link(self):  # noqa: N802
        if self._object == "SalesRecord":
            return Record(self.fake, "HeaderData",
                          [h for h in self.fake.headers if h["ACCOUNT_REF"] == self.current["ACCOUNT_REF"]])
        raise ComError(f"{self._object}.Link is not modelled by the fake")


class PostItems(Strict):
    def __init__(self, post):
        super().__init__(post.fake.surface, "PostItems")
        object.__setattr__(self, "post", post)
        object.__setattr__(self, "items", [])

    def Add(self):  # noqa: N802
        item = Buffer(self.post.fake, f"{self.post.label}.Items[{len(self.items)}]",
                      self._surface.fields(self.post.label, "item_fields"))
        self.items.append(item)
        return item


class Post(Strict):
    def __init__(self, fake, name):
        super().__init__(fake.surface, name)
        object.__setattr__(self, "fake", fake)
        object.__setattr__(self, "label", name)
        object.__setattr__(self, "header", Buffer(fake, f"{name}.Header", fake.surface.fields(name, "header_fields")))
        object.__setattr__(self, "items", PostItems(self))

    def get_Header(self):  # noqa: N802
        return self.header

    def get_Items(self):  # noqa: N802
        return self.items

    def on_set(self, name, value):
        self.fake.log.append((f"{self.label}.{name}", value))

    def Update(self):  # noqa: N802
        self.fake.log.append((f"{self.label}.Update",))
        if self.fake.fail_updates:
            self.fake.last_error = (0, self.fake.fail_updates.pop(0))
            return False
        header = dict(self.header.current)
        items = [dict(i.current) for i in self.items.items]
        if self.label in ("InvoicePost", "SopPost") and "CURRENCY" in header:
            account = next((c for c in self.fake.customers if c["ACCOUNT_REF"] == header.get("ACCOUNT_REF")), {})
            if header["CURRENCY"] != account.get("CURRENCY", 0):
                self.fake.last_error = (34, "Currency does not match the account's currency")  # sdoCurrencyDoesNotMatch
                return False
        if self.label == "InvoicePost":
            ledger = self._values.get("Type")
            if ledger not in self._surface.enum("LedgerType").values():
                self.fake.last_error = (0, f"Invalid ledger type {ledger!r} for an invoice post")
                return False
            kind = header.get("INVOICE_TYPE_CODE", 0)  # Sage's default document kind: product invoice
            carr_net, carr_tax = D(str(header.get("CARR_NET", 0))), D(str(header.get("CARR_TAX", 0)))
            net = sum((D(str(i["NET_AMOUNT"])) for i in items), D("0"))
            tax = sum((D(str(i["TAX_AMOUNT"])) for i in items), D("0"))
            self.fake.invoices.append({**header, "INVOICE_NUMBER": len(self.fake.invoices) + 1,
                                       "INVOICE_TYPE_CODE": kind, "ITEMS_NET": net, "ITEMS_TAX": tax,
                                       "CARR_NET": carr_net, "CARR_TAX": carr_tax, "LEDGER": ledger})
        elif self.label == "SopPost":
            net = sum((D(str(i["NET_AMOUNT"])) for i in items), D("0"))
            tax = sum((D(str(i["TAX_AMOUNT"])) for i in items), D("0"))
            self.fake.orders.append({**header, "ORDER_NUMBER": len(self.fake.orders) + 1, "ITEMS_NET": net,
                                     "ITEMS_TAX": tax})
        elif self.label == "TransactionPost":
            if "TYPE" not in header:
                self.fake.last_error = (0, "Transaction type not set")
                return False
            split_no = len(self.fake.splits) + 1
            self.fake.splits.append({"TRAN_NUMBER": split_no, "TYPE": header["TYPE"], "NET_AMOUNT": header["NET_AMOUNT"],
                                     "TAX_AMOUNT": D("0"), "AMOUNT_PAID": D("0")})
            self.fake.headers.append({**header, "FIRST_SPLIT": split_no, "LAST_SPLIT": split_no,
                                      "AMOUNT_PAID": D("0")})
            self._set("PostingNumber", len(self.fake.headers))
        return True

    def AllocatePayment(self, invoice_split, payment_split, amount, date):  # noqa: N802
        self.fake.log.append(("TransactionPost.AllocatePayment", invoice_split, payment_split, amount, date))
        self.fake.splits[invoice_split - 1]["AMOUNT_PAID"] += amount
        for h in self.fake.headers:
            if h["FIRST_SPLIT"] == payment_split:
                h["AMOUNT_PAID"] += amount
        return True


class SdoError(Strict):
    def __init__(self, surface, code, text):
        super().__init__(surface, "SDOError")
        self._set("Code", code)
        self._set("Text", text)


class Workspace(Strict):
    def __init__(self, fake):
        super().__init__(fake.surface, "WorkSpace")
        object.__setattr__(self, "fake", fake)

    def Connect(self, path, user, password, name):  # noqa: N802
        self.fake.log.append(("Workspace.Connect", path, user, password, name))
        engine_major = self.fake.progids[-1].split(".")[-1]
        if engine_major != self.fake.data_version.split(".")[0]:
            self.fake.last_error = (26, "Line 50 data is a different version to the SDO")
            return False
        if self.fake.connect_error:
            self.fake.last_error = self.fake.connect_error
            return False
        if user in self.fake.logged_in:
            self.fake.last_error = (23, f"User {user} is already logged in")
            return False
        return True

    def Disconnect(self):  # noqa: N802
        self.fake.log.append(("Workspace.Disconnect",))
        return True

    def CreateObject(self, name):  # noqa: N802
        spec = self._surface.objects.get(name)
        if spec is None or not spec.get("creatable") or any(d == name for d in self._surface.dropped):
            raise ComError(f"CreateObject: {name!r} is not an SDO object")
        tables = {"SalesRecord": self.fake.customers, "StockRecord": self.fake.stock,
                  "InvoiceRecord": self.fake.invoices, "HeaderData": self.fake.headers, "SplitData": self.fake.splits,
                  "SopRecord": self.fake.orders, "NominalRecord": self.fake.nominals, "BankRecord": self.fake.banks,
                  "CurrencyData": self.fake.currencies}
        if name in tables:
            return Record(self.fake, name, tables[name])
        return Post(self.fake, name)


class Workspaces(Strict):
    def __init__(self, fake):
        super().__init__(fake.surface, "Workspaces")
        object.__setattr__(self, "fake", fake)

    def Add(self, name):  # noqa: N802
        self.fake.log.append(("Workspaces.Add", name))
        return Workspace(self.fake)


class FakeSdo(Strict):
    """The engine plus its data. Call it with a ProgID (it is the ``dispatch`` function)."""

    def __init__(self, *, drop: tuple[str, ...] = (), data_version: str = "32.0"):
        super().__init__(Surface("sdo", drop=drop), "SDOEngine")
        data = {
            "surface": self._surface, "log": [], "progids": [], "data_version": data_version, "logged_in": set(),
            "customers": [{"ACCOUNT_REF": "WEB01", "NAME": "Web Sales", "E_MAIL": "web@example.com",
                           "ADDRESS_1": "1 High St", "ADDRESS_2": "", "ADDRESS_3": "", "ADDRESS_4": "",
                           "ADDRESS_5": "AB1 2CD", "BALANCE": D("0"), "CURRENCY": 0}],
            # Sage 50 UK's currency table: record n is currency number n - 1; the base one has rate 1.
            "currencies": [{"CODE": "GBP", "NAME": "Pound Sterling", "EXCHANGE_RATE": D("1")},
                           {"CODE": "USD", "NAME": "US Dollar", "EXCHANGE_RATE": D("1.270000")},
                           {"CODE": "EUR", "NAME": "Euro", "EXCHANGE_RATE": D("1.170000")},
                           {"CODE": "", "NAME": "", "EXCHANGE_RATE": D("0")}],
            "stock": [{"STOCK_CODE": "SKU-1", "QTY_IN_STOCK": D("5"), "QTY_ALLOCATED": D("1"),
                       "SALES_PRICE": D("10"), "RECORD_MODIFY_DATE": dt.datetime(2025, 1, 5, 10, 0, 0)}],
            "nominals": [{"ACCOUNT_REF": code, "NAME": name} for code, name in
                         (("1200", "Bank Current Account"), ("4000", "Sales Type A"), ("4905", "Distribution"))],
            "banks": [{"ACCOUNT_REF": "1200", "NAME": "Bank Current Account"}],
            "invoices": [], "headers": [], "splits": [], "orders": [],
            "connect_error": None, "fail_updates": [], "last_error": (0, ""),
        }
        for key, value in data.items():
            object.__setattr__(self, key, value)

    def __call__(self, progid):  # the dispatch function
        self.progids.append(progid)
        return self

    def get_Workspaces(self):  # noqa: N802
        return Workspaces(self)

    def SelectCompany(self, path):  # noqa: N802
        self.log.append(("SelectCompany", path))
        return path + "\\ACCDATA"

    def get_LastError(self):  # noqa: N802
        code, text = self.last_error
        return SdoError(self._surface, code, text)

    def update_ledgers(self):
        """What "Update Ledgers" in Sage does for an invoice: an SI header with its split."""
        for inv in self.invoices:
            first = len(self.splits) + 1
            for net, tax in ((inv["ITEMS_NET"], inv["ITEMS_TAX"]), (inv.get("CARR_NET"), inv.get("CARR_TAX"))):
                if net:  # one split for the items, one for carriage
                    self.splits.append({"TRAN_NUMBER": len(self.splits) + 1, "NET_AMOUNT": net, "TAX_AMOUNT": tax,
                                        "AMOUNT_PAID": D("0")})
            kind = 2 if inv["INVOICE_TYPE_CODE"] in (3, 4) else 1  # sdoSC / sdoSI
            self.headers.append({"TYPE": kind, "ACCOUNT_REF": inv["ACCOUNT_REF"], "INV_REF": str(inv["INVOICE_NUMBER"]),
                                 "FIRST_SPLIT": first, "LAST_SPLIT": len(self.splits), "NET_AMOUNT": inv["ITEMS_NET"],
                                 "AMOUNT_PAID": D("0")})

    def sets(self, prefix):
        return [(name.split(".")[-1], value) for name, *rest in self.log if name.startswith(prefix + ".")
                and rest for value in rest[:1]]
