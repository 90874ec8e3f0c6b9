"""The reconciliation as files an accountant can keep: CSV (one row per figure and per
difference) and a one-or-more-page PDF (fpdf2, core fonts only)."""

from __future__ import annotations

import csv
import io

from fpdf import FPDF

from connector.dashboard.reconcile import Reconciliation


def _fmt(value) -> str:
    return "" if value is None else f"{value:,.2f}"


def summary_rows(report: Reconciliation) -> list[list[str]]:
    rows = [["Currency", "Figure", "Store", "Sage", "Difference"]]
    for currency, t in report.by_currency.items():
        rows += [
            [currency, f"Sales ({t.orders} orders)", _fmt(t.sales), _fmt(t.sage_sales), _fmt(t.sales - t.sage_sales)],
            [currency, "Tax", _fmt(t.tax), _fmt(t.sage_tax), _fmt(t.tax - t.sage_tax)],
            [currency, "Shipping", _fmt(t.shipping), "", ""],
            [currency, "Discounts", _fmt(t.discounts), "", ""],
            [currency, f"Refunds ({t.refunds_count})", _fmt(t.refunds), _fmt(t.sage_refunds),
             _fmt(t.refunds - t.sage_refunds)],
        ]
        if report.compare_payments:
            rows.append([currency, "Payments", _fmt(t.payments), _fmt(t.sage_payments),
                         _fmt(t.payments - t.sage_payments)])
    return rows


def to_csv(report: Reconciliation, record_url=lambda pk: "") -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Reconciliation", report.integration_name, report.day.isoformat(), report.zone,
                     f"source: {report.source}"])
    writer.writerow([report.headline])
    writer.writerow([])
    writer.writerows(summary_rows(report))
    writer.writerow([])
    writer.writerow(["By payment method"])
    writer.writerow(["Currency", "Method", "Store sales"])
    for (currency, method), amount in sorted(report.by_method.items()):
        writer.writerow([currency, method, _fmt(amount)])
    writer.writerow(["By channel"])
    writer.writerow(["Currency", "Channel", "Store sales"])
    for (currency, channel), amount in sorted(report.by_channel.items()):
        writer.writerow([currency, channel, _fmt(amount)])
    if report.journal_by_account:
        writer.writerow(["Journal by account (debit +, credit -)"])
        writer.writerow(["Currency", "Account", "Amount"])
        for (currency, account), amount in sorted(report.journal_by_account.items()):
            writer.writerow([currency, account, _fmt(amount)])
    writer.writerow([])
    writer.writerow(["Differences"])
    writer.writerow(["What", "Store id", "Currency", "Store", "Sage", "State", "Record"])
    for d in report.differences:
        writer.writerow([d.what, d.store_id, d.currency, _fmt(d.store_amount), _fmt(d.sage_amount), d.state,
                         record_url(d.record_id) if d.record_id else ""])
    return out.getvalue()


def _latin(text: str) -> str:
    """The PDF's core fonts speak Latin-1; a dash or arrow the report uses is spelled plainly."""
    return (text.replace("—", "-").replace("–", "-").replace("↔", "<->").replace("→", "->")
            .encode("latin-1", "replace").decode("latin-1"))


def to_pdf(report: Reconciliation) -> bytes:
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, _latin(f"Store <-> Sage reconciliation: {report.integration_name}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, _latin(f"{report.day:%A %d %B %Y} (store time zone {report.zone}); source: {report.source}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(0, 7, _latin(report.headline), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    _table(pdf, summary_rows(report), widths=(20, 60, 35, 35, 35))
    if report.journal_by_account:
        pdf.ln(3)
        rows = [["Currency", "Account", "Debit + / credit -"]] + [
            [c, a, _fmt(v)] for (c, a), v in sorted(report.journal_by_account.items())]
        _table(pdf, rows, widths=(20, 60, 40))
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, f"Differences ({len(report.differences)})", new_x="LMARGIN", new_y="NEXT")
    if report.differences:
        rows = [["What", "Store id", "Cur.", "Store", "Sage", "State"]] + [
            [d.what, d.store_id, d.currency, _fmt(d.store_amount), _fmt(d.sage_amount), d.state]
            for d in report.differences]
        _table(pdf, rows, widths=(45, 22, 14, 28, 28, 50))
    else:
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(0, 6, "None.", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _table(pdf: FPDF, rows: list[list[str]], widths) -> None:
    for index, row in enumerate(rows):
        pdf.set_font("Helvetica", "B" if index == 0 else "", 9)
        for width, value in zip(widths, row, strict=False):
            numeric = index > 0 and value[:1].isdigit() or value[:1] == "-" and value[1:2].isdigit()
            pdf.cell(width, 6, _latin(str(value))[:40], border=1, align="R" if numeric else "L")
        pdf.ln(6)
