from django.contrib.auth.middleware import RemoteUserMiddleware
from django.http import Http404, HttpResponse
from django.shortcuts import render


class ProxyUserMiddleware(RemoteUserMiddleware):
    header = "HTTP_X_USER"


def home(request):
    # The template reads {{ flags }} from the context processor.
    return render(request, "shop/home.html")


def beta(request):
    # request.flags is bound to request.user: no user argument to pass.
    if not request.flags.active("beta"):
        raise Http404("no beta for you")
    return HttpResponse(f"beta for {request.user.username}")
